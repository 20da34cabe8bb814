"""The tracking store's contract, run against the in-memory fake AND the DynamoDB adapter (in-process moto):
what the stream processor relies on — versioned rows, facts and the checkpoint written only on commit,
no markers — holds for both."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from route_monitor_fakes import WALL0, Car, MemoryTrackingStore, StraightRoads, stream_records, whole_ride

from acr import catalog, dynamo, trace_export, tracing
from acr.catalog.car import CarPhase
from acr.catalog.monitoring import TripCompleted, TripStarted
from acr.leases import Lease, LeaseTable
from acr.stream import Checkpoint
from acr.unit_of_work import Conflict
from acr_testkit.aws import in_process_messaging, outbox_events, published
from route_monitor.adapters.dynamo import DynamoTrackingStore
from route_monitor.domain import COMPLETED, CarCursor, CarLeg, Point, Progress, RideTracking, Rules
from route_monitor.handlers import TelemetryProcessor
from route_monitor.ports import TrackingStore
from route_monitor.topology import CHECKPOINTS, TOPOLOGY

AT = datetime(2026, 1, 1, 0, 0, 6, 500_000, tzinfo=UTC)
SHARD = "shardId-000000000000"


@dataclass
class Backend:
    store: TrackingStore
    published: Callable[[], list[str]]
    checkpoint: Callable[[str], str | None]  # the stored sequence of one "shard#<reader>#<shard>"
    lease: Callable[[str], Checkpoint]  # replica takes SHARD's lease: a checkpoint it may write


def _at(lease: Lease | tuple[str, int], sequence: str = "") -> Checkpoint:
    owner, token = (lease.owner, lease.token) if isinstance(lease, Lease) else lease
    return Checkpoint(CHECKPOINTS, "route-monitor", SHARD, sequence, owner, token)


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        memory = MemoryTrackingStore()

        def take(replica: str) -> Checkpoint:
            key = f"shard#route-monitor#{SHARD}"
            held = (replica, memory.tables.leases.get(key, ("", 0))[1] + 1)
            memory.tables.leases[key] = held
            return _at(held)

        yield Backend(
            memory,
            lambda: [catalog.CATALOG[o.event.type].name for o in memory.tables.outbox],
            memory.tables.checkpoints.get,
            take,
        )
        return
    with in_process_messaging(TOPOLOGY) as messaging:

        def checkpoint(shard: str) -> str | None:
            row = dynamo.get(messaging.dynamodb, CHECKPOINTS, {"leaseKey": shard})
            return None if row is None or "sequence" not in row else str(row["sequence"])

        hours = itertools.count()

        def take_lease(replica: str) -> Checkpoint:
            later = time.time() + 3600 * next(hours)  # after any earlier holder's lease expired
            lease = LeaseTable(messaging.dynamodb, CHECKPOINTS, replica, 60, clock=lambda: later)
            taken = lease.acquire(f"shard#route-monitor#{SHARD}")
            assert taken is not None
            return _at(taken)

        yield Backend(
            DynamoTrackingStore(messaging.dynamodb, messaging.unit_of_work),
            lambda: published(messaging),
            checkpoint,
            take_lease,
        )


def a_car(car_id: str = "car-1", version: int = 0) -> CarCursor:
    return CarCursor(
        car_id,
        ride_id="ride-1",
        phase=CarPhase.TO_DESTINATION,
        sim_time=195.0,
        odometer_m=10_900.5,
        lat=60.168,
        lon=24.94,
        target=Point(60.168, 24.94),
        seen=["TO_DESTINATION|ride-1"],
        samples=[(180.0, 10_800.0), (195.0, 10_900.5)],
        shard=SHARD,
        version=version,
    )


def a_ride(version: int = 0) -> RideTracking:
    return RideTracking(
        "ride-1",
        car_id="car-2",
        phase=COMPLETED,
        lat=60.168,
        lon=24.94,
        sim_time=195.0,
        at=AT,
        target=Point(60.168, 24.94),
        distance_m=500.25,
        trip_started_sim=120.0,
        trip_started_at=AT.replace(second=4),
        completed=True,
        completed_at=AT,
        duration_s=75.0,
        eta_seconds=0.0,
        eta_pushed_at=AT.replace(second=5),
        legs={
            "car-1": CarLeg(arrived=True, started=True, stalled=True, distance_m=300.0),
            "car-2": CarLeg(
                arrived=True, started=True, distance_m=200.25, progress=Progress(60.1, 24.9, 150.0)
            ),
        },
        version=version,
    )


def test_rows_are_read_back_as_they_were_saved_at_the_next_version(backend: Backend) -> None:
    assert backend.store.cars(["car-1"]) == {} and backend.store.rides(["ride-1"]) == {}
    uow = backend.store.unit_of_work()
    uow.save_car(a_car())
    uow.save_ride(a_ride())
    uow.commit()
    assert backend.store.cars(["car-1", "car-9"]) == {"car-1": a_car(version=1)}
    assert backend.store.rides(["ride-1", "ride-9"]) == {"ride-1": a_ride(version=1)}
    stored = backend.store.rides(["ride-1"])["ride-1"]
    assert stored.phase == COMPLETED and stored.at == AT and stored.legs["car-1"].progress is None
    assert backend.store.cars(["car-1"])["car-1"].phase is CarPhase.TO_DESTINATION


def test_a_row_is_saved_only_over_the_version_it_was_read_at(backend: Backend) -> None:
    first = backend.store.unit_of_work()
    first.save_ride(a_ride())
    first.commit()

    as_if_new = backend.store.unit_of_work()
    as_if_new.save_ride(replace(a_ride(), distance_m=1.0))
    with pytest.raises(Conflict) as conflict:
        as_if_new.commit()
    assert conflict.value.labels == ["ride"]

    read = backend.store.rides(["ride-1"])["ride-1"]
    read.distance_m = 2.0
    current = backend.store.unit_of_work()
    current.save_ride(read)
    current.commit()
    stale = backend.store.unit_of_work()
    stale.save_car(a_car())  # a new car: fine
    stale.save_ride(replace(read, distance_m=3.0))  # read at version 1, stored at 2 by now
    with pytest.raises(Conflict) as conflict:
        stale.commit()
    assert conflict.value.labels == ["ride"]
    assert backend.store.rides(["ride-1"])["ride-1"].distance_m == 2.0
    assert backend.store.rides(["ride-1"])["ride-1"].version == 2
    assert backend.store.cars(["car-1"]) == {}


def test_facts_and_the_checkpoint_are_written_with_the_rows_or_not_at_all(backend: Backend) -> None:
    started = TripStarted(ride_id="ride-1", car_id="car-1", at=AT)
    done = TripCompleted(
        ride_id="ride-1", car_id="car-1", distance_meters=500.0, duration_seconds=75.0, at=AT
    )
    held = backend.lease("route-monitor-1")
    first = backend.store.unit_of_work()
    first.save_car(a_car())
    first.record(started, subject="ride-1")
    first.checkpoint(replace(held, sequence="0001"))
    after: list[str] = []
    first.after_commit(lambda: after.append("committed"))
    assert backend.published() == [] and backend.checkpoint(f"shard#route-monitor#{SHARD}") is None
    first.commit()
    assert backend.published() == ["TripStarted"] and after == ["committed"]
    assert backend.checkpoint(f"shard#route-monitor#{SHARD}") == "0001"

    failed = backend.store.unit_of_work()
    failed.save_car(a_car())  # still at version 0 here: the row is at 1
    failed.record(done, subject="ride-1")
    failed.checkpoint(replace(held, sequence="0002"))
    with pytest.raises(Conflict) as conflict:
        failed.commit()
    assert conflict.value.labels == ["car"]
    assert backend.published() == ["TripStarted"]
    assert backend.checkpoint(f"shard#route-monitor#{SHARD}") == "0001"


def test_no_markers_are_kept_a_checkpoint_alone_commits_again_and_again(backend: Backend) -> None:
    event = catalog.record(TripStarted(ride_id="ride-1", car_id="car-1", at=AT), subject="ride-1")
    held = backend.lease("route-monitor-1")
    for sequence in ("0001", "0002"):
        uow = backend.store.unit_of_work()
        uow.mark_consumed(event)
        uow.checkpoint(replace(held, sequence=sequence))
        uow.commit()
    assert backend.checkpoint(f"shard#route-monitor#{SHARD}") == "0002"


def test_a_replica_that_lost_the_shards_lease_commits_nothing(backend: Backend) -> None:
    """Fencing: the stale holder's rows, facts and checkpoint are refused together."""
    stale = backend.lease("route-monitor-1")
    current = backend.lease("route-monitor-2")
    assert current.token == stale.token + 1
    uow = backend.store.unit_of_work()
    uow.save_car(a_car())
    uow.record(TripStarted(ride_id="ride-1", car_id="car-1", at=AT), subject="ride-1")
    uow.checkpoint(replace(stale, sequence="0001"))
    with pytest.raises(Conflict) as refused:
        uow.commit()
    assert refused.value.labels == ["checkpoint"]
    assert backend.published() == [] and backend.store.cars(["car-1"]) == {}
    assert backend.checkpoint(f"shard#route-monitor#{SHARD}") is None


def test_many_rows_are_read_in_one_call_past_the_batch_size(backend: Backend) -> None:
    car_ids = [f"car-{n:03d}" for n in range(150)]
    for chunk in (car_ids[:75], car_ids[75:]):
        uow = backend.store.unit_of_work()
        for car_id in chunk:
            uow.save_car(a_car(car_id))
        uow.commit()
    cars = backend.store.cars([*car_ids, "car-missing"])
    assert sorted(cars) == car_ids and all(c.version == 1 for c in cars.values())


def test_the_cars_that_carry_a_ride_are_read_all_at_once(backend: Backend) -> None:
    assert backend.store.carrying() == []
    uow = backend.store.unit_of_work()
    for n in range(30):
        car = a_car(f"car-{n:03d}")
        uow.save_car(car if n % 3 else replace(car, ride_id=None, phase=CarPhase.IDLE, target=None))
    uow.commit()
    carrying = sorted(backend.store.carrying(), key=lambda c: c.car_id)
    assert [c.car_id for c in carrying] == [f"car-{n:03d}" for n in range(30) if n % 3]
    assert carrying[0] == a_car("car-001", version=1)  # with its shard and its last simulated time


# --- the ride's trace ----------------------------------------------------------------------------------
def test_a_restarted_processor_settles_a_quiet_car_in_the_trace_its_rows_keep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The car cursor and the tracking row keep the ride's trace context: a restarted processor (or the
    replica the shard moved to) that never saw the ride's telemetry tells the stall in the ride's trace."""
    trace_export.configure("route-monitor")
    rules = Rules(stall_window_s=120, eta_push_s=2)
    with in_process_messaging(TOPOLOGY) as messaging:
        store = DynamoTrackingStore(messaging.dynamodb, messaging.unit_of_work)
        trip = whole_ride(Car("car-1"), "ride-car-1")
        trip = trip[: [n for n, r in enumerate(trip) if r.phase == "TO_DESTINATION"][2] + 1]  # cut mid trip
        lease = LeaseTable(messaging.dynamodb, CHECKPOINTS, "route-monitor-1", 60).acquire(
            f"shard#route-monitor#{SHARD}"
        )
        assert lease is not None
        with trace.get_tracer("tests").start_as_current_span("the ride's trace") as telemetry:
            records = stream_records(trip)  # the simulator sends a ride's telemetry in the ride's trace
            TelemetryProcessor(store, StraightRoads(), rules, clock=lambda: WALL0)(
                records, _at(lease, records[-1].sequence)
            )
        trace_id = format(telemetry.get_span_context().trace_id, "032x")
        before = {catalog.CATALOG[e.type].name for e in outbox_events(messaging)}
        monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())  # a fresh process

        restarted = TelemetryProcessor(store, StraightRoads(), rules, clock=lambda: WALL0)
        parked, last = Car("car-2", lon=24.95), trip[-1].sim_time_s
        for n, sim in enumerate([last + 130, last + 260]):
            beat = stream_records([parked.record(sim, "IDLE", None)], first=100 + n)
            restarted(beat, _at(lease, beat[-1].sequence))

        (stall,) = [e for e in outbox_events(messaging) if catalog.CATALOG[e.type].name == "CarStalled"]
        assert "CarStalled" not in before and tracing.trace_id(stall.traceparent) == trace_id
