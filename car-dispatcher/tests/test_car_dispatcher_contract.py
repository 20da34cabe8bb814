"""The fleet ports' contract, run against the in-memory fakes AND the DynamoDB adapters (in-process moto):
what the handlers rely on — conditions, markers, events recorded only on commit — holds for both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import pytest
from car_dispatcher_fakes import FleetStore, MemoryFleetUnitOfWork, MemoryPositions

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.fleet import CarOutOfService
from acr.catalog.monitoring import CarStalled
from acr.clock import now
from acr.fleet import FleetCar
from acr.runtime import Messaging
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import in_process_messaging, published
from car_dispatcher.adapters.dynamo import DynamoFleetUnitOfWork, DynamoPositions, seed_cars
from car_dispatcher.domain import Assignment, AssignmentStatus, Car, CarState
from car_dispatcher.handlers import add_cars
from car_dispatcher.ports import Positions, UnitOfWork
from car_dispatcher.topology import TOPOLOGY

PICKUP = Place(label="pickup", lat=60.17, lon=24.94, address_id="addr_1")
DROPOFF = Place(label="dropoff", lat=60.18, lon=24.96)


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    seed: Callable[[str, float, float], None]
    published: Callable[[], list[str]]
    positions: Positions


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        store = FleetStore()

        def seed(car_id: str, lat: float, lon: float) -> None:
            add_cars(lambda: MemoryFleetUnitOfWork(store), [Car(car_id, CarState.AVAILABLE, lat, lon)])

        yield Backend(
            lambda: MemoryFleetUnitOfWork(store),
            seed,
            lambda: [catalog.CATALOG[o.event.type].name for o in store.outbox],
            MemoryPositions(store),
        )
        return
    with in_process_messaging(TOPOLOGY) as messaging:

        def seed_table(car_id: str, lat: float, lon: float) -> None:
            seed_cars(messaging.dynamodb, partial(_unit_of_work, messaging), [FleetCar(car_id, lat, lon)])

        yield Backend(
            lambda: DynamoFleetUnitOfWork(messaging.unit_of_work()),
            seed_table,
            lambda: published(messaging),
            DynamoPositions(messaging.dynamodb),
        )


def _unit_of_work(messaging: Messaging) -> UnitOfWork:
    return DynamoFleetUnitOfWork(messaging.unit_of_work())


def test_a_seeded_car_is_added_once_with_its_event_for_the_fleet_view(backend: Backend) -> None:
    backend.seed("car-1", 60.17, 24.94)
    backend.seed("car-1", 60.3, 24.9)  # another replica's seeding, or a restart: nothing new
    assert _car(backend, "car-1") == Car("car-1", CarState.AVAILABLE, 60.17, 24.94)
    assert backend.published() == ["FleetCarUpdated"]


def _car(backend: Backend, car_id: str) -> Car:
    car = backend.unit_of_work().cars.get(car_id)
    assert car is not None
    return car


def _commit_fails_on(uow: UnitOfWork) -> list[str]:
    with pytest.raises(Conflict) as conflict:
        uow.commit()
    return conflict.value.labels


def test_cars_are_read_one_by_one_and_all_in_id_order(backend: Backend) -> None:
    backend.seed("car-2", 60.18, 24.95)
    backend.seed("car-1", 60.17, 24.94)
    assert backend.unit_of_work().cars.get("nope") is None
    assert _car(backend, "car-1") == Car("car-1", CarState.AVAILABLE, 60.17, 24.94)
    assert [c.car_id for c in backend.unit_of_work().cars.all()] == ["car-1", "car-2"]


def test_a_car_is_reserved_only_when_available_at_the_version_read(backend: Backend) -> None:
    backend.seed("car-1", 60.17, 24.94)
    read = _car(backend, "car-1")
    uow = backend.unit_of_work()
    uow.cars.reserve(read, "ride_1")
    uow.commit()
    assert _car(backend, "car-1") == read.changed(CarState.RESERVED, "ride_1")

    again = backend.unit_of_work()
    again.cars.reserve(read, "ride_2")  # as read before: AVAILABLE, but taken meanwhile
    assert _commit_fails_on(again) == ["car"]

    release = backend.unit_of_work()
    release.cars.change(_car(backend, "car-1"), CarState.AVAILABLE, None)
    release.commit()
    assert _car(backend, "car-1").state == CarState.AVAILABLE
    late = backend.unit_of_work()
    late.cars.reserve(read, "ride_2")  # AVAILABLE again, but not at the version read
    assert _commit_fails_on(late) == ["car"]
    assert _car(backend, "car-1") == read.changed(CarState.RESERVED, "ride_1").changed(
        CarState.AVAILABLE, None
    )


def test_a_car_changes_only_over_the_version_read(backend: Backend) -> None:
    backend.seed("car-1", 60.17, 24.94)
    read = _car(backend, "car-1")
    uow = backend.unit_of_work()
    uow.cars.change(read, CarState.ON_TRIP, "ride_1")
    uow.commit()
    assert _car(backend, "car-1") == Car("car-1", CarState.ON_TRIP, 60.17, 24.94, "ride_1", 1)

    stale = backend.unit_of_work()
    stale.cars.change(read, CarState.OUT_OF_SERVICE, None)
    assert _commit_fails_on(stale) == ["car"]
    out = backend.unit_of_work()
    out.cars.change(_car(backend, "car-1"), CarState.OUT_OF_SERVICE, "ride_1")
    out.commit()
    back = backend.unit_of_work()
    back.cars.change(_car(backend, "car-1"), CarState.AVAILABLE, None)
    back.commit()
    assert _car(backend, "car-1") == Car("car-1", CarState.AVAILABLE, 60.17, 24.94, None, 3)


def test_an_assignment_is_added_once_then_saved_only_over_its_version(backend: Backend) -> None:
    assert backend.unit_of_work().assignments.get("ride_1") is None
    fresh = Assignment("ride_1", AssignmentStatus.ASSIGNED, pickup=PICKUP, dropoff=DROPOFF, ride_sequence=1)
    first = backend.unit_of_work()
    first.assignments.add(fresh.assigned("car-1"))
    first.commit()
    assert backend.unit_of_work().assignments.get("ride_1") == fresh.assigned("car-1")  # sequences kept

    twice = backend.unit_of_work()
    twice.assignments.add(Assignment("ride_1", AssignmentStatus.CANCELLED))
    assert _commit_fails_on(twice) == ["assignment"]

    row = fresh.assigned("car-1")
    started = backend.unit_of_work()
    started.assignments.save(row.started(), row.version)
    started.commit()
    stale = backend.unit_of_work()
    stale.assignments.save(row.ended(AssignmentStatus.CANCELLED), row.version)
    assert _commit_fails_on(stale) == ["assignment"]
    missing = backend.unit_of_work()
    missing.assignments.save(Assignment("ride_2", AssignmentStatus.COMPLETED, version=1), 0)
    assert _commit_fails_on(missing) == ["assignment"]
    assert backend.unit_of_work().assignments.get("ride_1") == row.started()
    tombstone = backend.unit_of_work()
    tombstone.assignments.add(Assignment("ride_3", AssignmentStatus.CANCELLED, ride_sequence=4))
    tombstone.commit()
    assert backend.unit_of_work().assignments.get("ride_3") == Assignment(
        "ride_3", AssignmentStatus.CANCELLED, ride_sequence=4
    )


def test_a_failed_commit_writes_nothing_and_publishes_nothing(backend: Backend) -> None:
    backend.seed("car-1", 60.17, 24.94)
    backend.seed("car-2", 60.18, 24.95)
    taken = backend.unit_of_work()
    taken.assignments.add(Assignment("ride_1", AssignmentStatus.CANCELLED))
    taken.commit()

    both = backend.unit_of_work()
    both.cars.reserve(_car(backend, "car-1"), "ride_1")
    both.assignments.add(Assignment("ride_1", AssignmentStatus.ASSIGNED, "car-1", PICKUP, DROPOFF))
    both.record(CarOutOfService(car_id="car-2", reason="stalled"), subject="car-2")
    done: list[str] = []
    both.after_commit(lambda: done.append("after"))
    assert _commit_fails_on(both) == ["assignment"]
    assert _car(backend, "car-1").state == CarState.AVAILABLE and done == []
    assert backend.published() == ["FleetCarUpdated", "FleetCarUpdated"]  # the seeding's, nothing since


def test_a_marker_makes_a_second_delivery_a_duplicate_and_events_go_out_on_commit(backend: Backend) -> None:
    backend.seed("car-1", 60.17, 24.94)
    stalled = CarStalled(ride_id=None, car_id="car-1", lat=60.17, lon=24.94, at=now())
    event = catalog.record(stalled, subject="car-1")
    first = backend.unit_of_work()
    first.cars.change(_car(backend, "car-1"), CarState.OUT_OF_SERVICE, None)
    first.record(CarOutOfService(car_id="car-1", reason="stalled"), subject="car-1")
    first.mark_consumed(event)
    done: list[str] = []
    first.after_commit(lambda: done.append("after"))
    assert backend.published() == ["FleetCarUpdated"] and done == []  # the seeding's
    first.commit()
    assert backend.published() == ["FleetCarUpdated", "CarOutOfService"] and done == ["after"]

    second = backend.unit_of_work()
    second.cars.change(_car(backend, "car-1"), CarState.AVAILABLE, None)
    second.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        second.commit()
    assert _car(backend, "car-1").state == CarState.OUT_OF_SERVICE


def test_saved_positions_move_a_car_without_changing_its_version(backend: Backend) -> None:
    backend.seed("car-1", 60.17, 24.94)
    read = _car(backend, "car-1")
    backend.positions.save_positions({"car-1": (60.171, 24.941)})
    assert _car(backend, "car-1") == Car("car-1", CarState.AVAILABLE, 60.171, 24.941)
    uow = backend.unit_of_work()
    uow.cars.reserve(read, "ride_1")  # read before the move: telemetry does not race with dispatch
    uow.commit()
    assert _car(backend, "car-1") == Car("car-1", CarState.RESERVED, 60.171, 24.941, "ride_1", 1)
