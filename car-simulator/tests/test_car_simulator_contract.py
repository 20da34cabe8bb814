"""The car edge's storage (the marker and the commands it posts in one unit of work; a command's removal
with the car's row, fenced by the group lease; progress saves; rows read back), run against the in-memory
fake AND the DynamoDB adapters (in-process moto): what restart-safe, replicated cars rely on holds for
both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from car_simulator_fakes import MemoryCarStore, lease
from opentelemetry import trace

from acr import catalog, trace_export, tracing
from acr.catalog.car import CarPhase
from acr.catalog.fleet import CarOutOfService, CarReleased
from acr.envelope import CloudEvent
from acr.leases import LeaseTable
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import in_process_messaging
from car_simulator.adapters.dynamo import DynamoCarStore, DynamoCarUnitOfWork, DynamoMailbox
from car_simulator.adapters.kinesis import to_record
from car_simulator.domain import (
    GROUPS,
    Assignment,
    Car,
    CarCommand,
    CommandKind,
    Leg,
    Point,
    Snapshot,
    car_group,
)
from car_simulator.ports import CarStore, Fenced, Mailbox, UnitOfWork
from car_simulator.simulation import Report
from car_simulator.topology import TOPOLOGY

HOME, PICKUP, DROPOFF = Point(60.16, 24.93), Point(60.165, 24.94), Point(60.17, 24.93)


GROUP = car_group("car-00001")
HELD = lease(GROUP)  # every group is held by replica-1 with token 1 at the start


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    cars: CarStore
    mailbox: Mailbox
    steal: Callable[[str], None]  # another replica takes the group's lease (token 2)


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        memory = MemoryCarStore()

        def steal(group: str) -> None:
            memory.tables.holders[group] = ("replica-2", 2)

        yield Backend(memory.unit_of_work, memory, memory, steal)
        return
    with in_process_messaging(TOPOLOGY) as messaging:
        now = [0.0]
        leases = LeaseTable(
            messaging.dynamodb, TOPOLOGY.leases_table, "replica-1", 10.0, clock=lambda: now[0]
        )
        for group in GROUPS:
            assert leases.acquire(group) is not None
        other = LeaseTable(messaging.dynamodb, TOPOLOGY.leases_table, "replica-2", 10.0, clock=lambda: now[0])

        def take(group: str) -> None:
            now[0] += 60.0  # replica-1 stopped renewing: its lease expired
            assert other.acquire(group) is not None

        yield Backend(
            lambda: DynamoCarUnitOfWork(messaging.unit_of_work(), leases),
            DynamoCarStore(messaging.dynamodb, leases),
            DynamoMailbox(messaging.dynamodb),
            take,
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
    assert backend.cars.load_all() == []
    saved = Snapshot(_driving(), 1234.5)
    _commit(backend, saved, _out_of_service())
    [loaded] = backend.cars.load_all()
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
    assert [s.sim_time_s for s in backend.cars.load_all()] == [10.0]
    with pytest.raises(Conflict) as lost:  # a row at version 3 must be written over version 2, not 1
        _commit(backend, Snapshot(_driving(version=3), 30.0), _out_of_service(subject="y"))
    assert lost.value.labels == ["car"]
    _commit(backend, Snapshot(_driving(version=2), 40.0), _out_of_service(subject="z"))
    assert [(s.car.version, s.sim_time_s) for s in backend.cars.load_all()] == [(2, 40.0)]


def test_progress_is_written_at_the_rows_version_and_never_over_a_newer_command(backend: Backend) -> None:
    _commit(backend, Snapshot(_driving(version=1), 10.0), _out_of_service())
    moved = _driving(version=1)
    moved.advance(50.0, 100.0)
    assert backend.cars.save_progress(Snapshot(moved, 60.0), HELD)
    [row] = backend.cars.load_all()
    assert row.car.travelled_m == pytest.approx(moved.travelled_m) and row.car.assignment == moved.assignment
    _commit(backend, Snapshot(_driving(version=2), 70.0), _out_of_service(subject="y"))
    late = _driving(version=1)  # progress computed before that command, written after it
    late.advance(80.0, 100.0)
    assert not backend.cars.save_progress(Snapshot(late, 80.0), HELD)
    assert [(s.car.version, s.sim_time_s) for s in backend.cars.load_all()] == [(2, 70.0)]


def test_a_finished_ride_is_removed_with_its_assignment(backend: Backend) -> None:
    _commit(backend, Snapshot(_driving(), 10.0), _out_of_service())
    done = _driving()
    done.advance(10_000, 100.0)
    assert (done.phase, done.ride_id, done.assignment) == (CarPhase.IDLE, None, None)
    assert backend.cars.save_progress(Snapshot(done, 20.0), HELD)
    [row] = backend.cars.load_all()
    assert row == Snapshot(done, 20.0) and list(row.car.closed_rides) == ["ride-0", "ride-1"]


def test_a_car_never_commanded_gets_a_row_from_its_first_progress_save(backend: Backend) -> None:
    stalled = Car("car-00002", HOME.lat, HOME.lon)
    stalled.stall()
    assert backend.cars.save_progress(Snapshot(stalled, 5.0), lease(car_group("car-00002")))
    assert backend.cars.load_all() == [Snapshot(stalled, 5.0)]
    assigned = _driving(version=1)
    assigned.car_id = "car-00002"
    _commit(backend, Snapshot(assigned, 6.0), _out_of_service())  # a command over that version-0 row
    assert [s.car.version for s in backend.cars.load_all()] == [1]


def _command(n: int, car: str = "car-00001") -> CarCommand:
    return CarCommand(f"command-{n}", car, CommandKind.RELEASE, ride_id=f"ride-{n}")


def _post(backend: Backend, command: CarCommand, event: CloudEvent) -> None:
    uow = backend.unit_of_work()
    uow.commands.post(command)
    uow.mark_consumed(event)
    uow.commit()


def test_commands_are_posted_with_their_marker_in_order_and_a_redelivery_posts_nothing(
    backend: Backend,
) -> None:
    first = _out_of_service(subject="a")
    _post(backend, _command(1), first)
    with pytest.raises(Duplicate):
        _post(backend, _command(1), first.resent())
    _post(backend, _command(2), _out_of_service(subject="b"))
    backend.mailbox.post(_command(3))  # an operator's call: no marker
    assert backend.mailbox.pending(GROUPS) == {GROUP: [_command(1), _command(2), _command(3)]}


def test_a_command_leaves_the_mailbox_once_with_the_cars_row(backend: Backend) -> None:
    backend.mailbox.post(_command(1))
    backend.mailbox.post(_command(2))
    applied = backend.unit_of_work()
    applied.fence(HELD)
    applied.commands.done(_command(1))
    applied.cars.save(Snapshot(_driving(version=1), 10.0))
    applied.commit()
    assert backend.mailbox.pending([GROUP]) == {GROUP: [_command(2)]}
    again = backend.unit_of_work()  # a second application of command 1 (it is no longer first)
    again.fence(HELD)
    again.commands.done(_command(1))
    again.cars.save(Snapshot(_driving(version=2), 20.0))
    with pytest.raises(Conflict) as refused:
        again.commit()
    assert refused.value.labels == ["command"]
    assert [(s.car.version, s.sim_time_s) for s in backend.cars.load_all()] == [(1, 10.0)]


def test_a_replica_that_lost_the_group_can_neither_apply_a_command_nor_save_progress(
    backend: Backend,
) -> None:
    backend.mailbox.post(_command(1))
    _commit(backend, Snapshot(_driving(version=1), 10.0), _out_of_service())
    backend.steal(GROUP)
    stale = backend.unit_of_work()
    stale.fence(HELD)
    stale.commands.done(_command(1))
    stale.cars.save(Snapshot(_driving(version=2), 20.0))
    with pytest.raises(Conflict) as refused:
        stale.commit()
    assert refused.value.labels == ["lease"]
    with pytest.raises(Fenced):
        backend.cars.save_progress(Snapshot(_driving(version=1), 30.0), HELD)
    assert backend.mailbox.pending([GROUP]) == {GROUP: [_command(1)]}
    assert [(s.car.version, s.sim_time_s) for s in backend.cars.load_all()] == [(1, 10.0)]
    assert backend.cars.load(["car-00001", "car-00002"]) == backend.cars.load_all()


# --- the ride's trace ----------------------------------------------------------------------------------
def test_the_replica_driving_a_car_continues_its_rides_trace_from_the_mailbox_then_from_the_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command keeps the context of the consumer span that posted it, the car's row the ride's context:
    a replica that never consumed the assignment, or a restarted one, sends the ride's telemetry in its
    trace."""
    trace_export.configure("car-simulator")
    with in_process_messaging(TOPOLOGY) as messaging:
        leases = LeaseTable(messaging.dynamodb, TOPOLOGY.leases_table, "replica-1", 10.0)
        assert leases.acquire(GROUP) is not None
        mailbox, store = DynamoMailbox(messaging.dynamodb), DynamoCarStore(messaging.dynamodb, leases)
        assign = CarCommand("evt-1", "car-00001", CommandKind.ASSIGN, "ride-1", PICKUP, DROPOFF)
        with trace.get_tracer("tests").start_as_current_span("process CarAssigned") as consumer:
            posting = DynamoCarUnitOfWork(messaging.unit_of_work(), leases)
            posting.commands.post(assign)
            posting.commit()
        trace_id = format(consumer.get_span_context().trace_id, "032x")

        def telemetry_trace(snapshot: Snapshot) -> str | None:
            report = Report(snapshot.car.telemetry(snapshot.sim_time_s), 0.0, essential=True)
            return tracing.trace_id(CloudEvent.from_json(to_record(report)["Data"]).traceparent)

        monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())  # the car's driver is another replica
        [pending] = mailbox.pending([GROUP])[GROUP]
        applying = DynamoCarUnitOfWork(messaging.unit_of_work(), leases)
        applying.commands.done(pending)
        applying.cars.save(Snapshot(_driving(), 100.0))
        applying.commit()
        assert telemetry_trace(Snapshot(_driving(), 100.0)) == trace_id

        monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())  # that replica restarted
        [loaded] = store.load(["car-00001"])
        assert telemetry_trace(loaded) == trace_id
