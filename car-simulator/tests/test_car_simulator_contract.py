"""The car edge's storage (the marker and the commanded car's row in one unit of work; progress saves;
every row read back), run against the in-memory fake AND the DynamoDB adapters (in-process moto): what
restart-safe cars rely on holds for both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from car_simulator_fakes import MemoryCarStore

from acr import catalog
from acr.catalog.car import CarPhase
from acr.catalog.fleet import CarOutOfService, CarReleased
from acr.envelope import CloudEvent
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import in_process_messaging
from car_simulator.adapters.dynamo import DynamoCarStore, DynamoCarUnitOfWork
from car_simulator.domain import Assignment, Car, Leg, Point, Snapshot
from car_simulator.ports import CarStore, UnitOfWork
from car_simulator.topology import TOPOLOGY

HOME, PICKUP, DROPOFF = Point(60.16, 24.93), Point(60.165, 24.94), Point(60.17, 24.93)


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    cars: CarStore


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        memory = MemoryCarStore()
        yield Backend(memory.unit_of_work, memory)
        return
    with in_process_messaging(TOPOLOGY) as messaging:
        yield Backend(
            lambda: DynamoCarUnitOfWork(messaging.unit_of_work()), DynamoCarStore(messaging.dynamodb)
        )


def _out_of_service(subject: str = "car-00001") -> CloudEvent:
    return catalog.record(CarOutOfService(car_id="car-00001", reason="stalled"), subject=subject)


def _driving(version: int = 1) -> Car:
    """A car 100 s into a 300 s drive to the pickup (by a corner), one ride already closed."""
    car = Car("car-00001", HOME.lat, HOME.lon, battery=80.0, version=version)
    car.closed_rides.append("ride-0")
    to_pickup = Leg([(HOME.lat, HOME.lon), (60.165, 24.93), (PICKUP.lat, PICKUP.lon)], 300)
    car.assign(
        Assignment("ride-1", PICKUP, DROPOFF, to_pickup, Leg([(60.165, 24.94), (60.17, 24.93)], 200), 60)
    )
    car.advance(100.0, 0.0)
    return car


def _commit(backend: Backend, snapshot: Snapshot, event: CloudEvent) -> None:
    uow = backend.unit_of_work()
    uow.cars.save(snapshot)
    uow.mark_consumed(event)
    uow.commit()


def test_the_change_runs_after_the_marker_commits_and_never_for_a_second_delivery(backend: Backend) -> None:
    event = _out_of_service()
    applied: list[str] = []
    first = backend.unit_of_work()
    first.after_commit(lambda: applied.append("first"))
    first.mark_consumed(event)
    assert applied == []
    first.commit()
    assert applied == ["first"]

    again = backend.unit_of_work()
    again.after_commit(lambda: applied.append("again"))
    again.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        again.commit()
    assert applied == ["first"]

    other = backend.unit_of_work()  # another event about the same car is not a duplicate
    other.after_commit(lambda: applied.append("other"))
    other.mark_consumed(_out_of_service(subject="x"))
    other.commit()
    assert applied == ["first", "other"]


def test_the_car_edge_records_no_events(backend: Backend) -> None:
    with pytest.raises(RuntimeError):
        backend.unit_of_work().record(CarReleased(ride_id="r1", car_id="car-00001", reason="x"), subject="r1")


def test_a_car_reads_back_as_it_was_stored_on_its_leg(backend: Backend) -> None:
    assert backend.cars.load() == []
    saved = Snapshot(_driving(), 1234.5)
    _commit(backend, saved, _out_of_service())
    [loaded] = backend.cars.load()
    assert loaded == saved  # legs, progress on the leg, position, closed rides, version
    car, assignment = loaded.car, saved.car.assignment
    assert assignment is not None and car.leg is not None
    assert (car.phase, car.ride_id, car.target, car.leg) == (
        CarPhase.TO_PICKUP,
        "ride-1",
        PICKUP,
        assignment.to_pickup,
    )
    assert 0 < car.travelled_m == saved.car.travelled_m < car.leg.length_m


def test_a_command_row_commits_with_the_marker_only_over_the_version_it_was_read_at(backend: Backend) -> None:
    event = _out_of_service()
    _commit(backend, Snapshot(_driving(version=1), 10.0), event)
    with pytest.raises(Duplicate):  # the redelivery writes nothing, the row neither
        _commit(backend, Snapshot(_driving(version=2), 20.0), event.resent())
    assert [s.sim_time_s for s in backend.cars.load()] == [10.0]
    with pytest.raises(Conflict) as lost:  # a row at version 3 must be written over version 2, not 1
        _commit(backend, Snapshot(_driving(version=3), 30.0), _out_of_service(subject="y"))
    assert lost.value.labels == ["car"]
    _commit(backend, Snapshot(_driving(version=2), 40.0), _out_of_service(subject="z"))
    assert [(s.car.version, s.sim_time_s) for s in backend.cars.load()] == [(2, 40.0)]


def test_progress_is_written_at_the_rows_version_and_never_over_a_newer_command(backend: Backend) -> None:
    _commit(backend, Snapshot(_driving(version=1), 10.0), _out_of_service())
    moved = _driving(version=1)
    moved.advance(50.0, 100.0)
    assert backend.cars.save_progress(Snapshot(moved, 60.0))
    [row] = backend.cars.load()
    assert row.car.travelled_m == pytest.approx(moved.travelled_m) and row.car.assignment == moved.assignment
    _commit(backend, Snapshot(_driving(version=2), 70.0), _out_of_service(subject="y"))
    late = _driving(version=1)  # progress computed before that command, written after it
    late.advance(80.0, 100.0)
    assert not backend.cars.save_progress(Snapshot(late, 80.0))
    assert [(s.car.version, s.sim_time_s) for s in backend.cars.load()] == [(2, 70.0)]


def test_a_finished_ride_is_removed_with_its_assignment(backend: Backend) -> None:
    _commit(backend, Snapshot(_driving(), 10.0), _out_of_service())
    done = _driving()
    done.advance(10_000, 100.0)
    assert (done.phase, done.ride_id, done.assignment) == (CarPhase.IDLE, None, None)
    assert backend.cars.save_progress(Snapshot(done, 20.0))
    [row] = backend.cars.load()
    assert row == Snapshot(done, 20.0) and list(row.car.closed_rides) == ["ride-0", "ride-1"]


def test_a_car_never_commanded_gets_a_row_from_its_first_progress_save(backend: Backend) -> None:
    stalled = Car("car-00002", HOME.lat, HOME.lon)
    stalled.stall()
    assert backend.cars.save_progress(Snapshot(stalled, 5.0))
    assert backend.cars.load() == [Snapshot(stalled, 5.0)]
    assigned = _driving(version=1)
    assigned.car_id = "car-00002"
    _commit(backend, Snapshot(assigned, 6.0), _out_of_service())  # a command over that version-0 row
    assert [s.car.version for s in backend.cars.load()] == [1]
