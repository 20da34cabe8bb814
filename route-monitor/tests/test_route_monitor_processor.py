"""The stream processor over in-memory tables: one transaction per chunk, checkpoints, crashes, conflicts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from route_monitor_fakes import (
    WALL0,
    Car,
    MemoryTrackingStore,
    StraightRoads,
    TrackingTables,
    seconds,
    stream_records,
    wall,
    whole_ride,
)

from acr import clock
from acr.catalog.car import CarTelemetry
from acr.metrics import COUNTERS
from acr.stream import Checkpoint, ShardLost, StreamRecord
from acr_testkit.identity import settings_for, signed
from acr_testkit.messaging import FakeMessaging
from route_monitor.bootstrap import SERVICE, Adapters, assemble
from route_monitor.domain import Rules
from route_monitor.handlers import TelemetryProcessor, TelemetryStats

TABLE = "acr-route-monitor-leases"
RULES = Rules(stall_window_s=120, eta_push_s=2)


class Killed(BaseException):
    """The process died (SIGKILL): nothing after this point happens."""


def processor(store: MemoryTrackingStore, now: datetime = WALL0, max_items: int = 100) -> TelemetryProcessor:
    clock = lambda: now  # noqa: E731
    return TelemetryProcessor(
        store=store,
        roads=StraightRoads(),
        rules=RULES,
        clock=clock,
        stats=TelemetryStats(clock=clock),
        max_items=max_items,
    )


def checkpoint(records: list[StreamRecord]) -> Checkpoint:
    return Checkpoint(TABLE, "route-monitor", "shardId-000000000000", records[-1].sequence)


def after_checkpoint(store: MemoryTrackingStore, records: list[StreamRecord]) -> list[StreamRecord]:
    """What a restarted reader gets: the records after the committed checkpoint."""
    done = store.tables.checkpoints.get("shard#route-monitor#shardId-000000000000")
    return [r for r in records if done is None or r.sequence > done]


def fleet_of_rides(count: int) -> list[StreamRecord]:
    """``count`` cars each doing a whole ride, their records interleaved by simulated time."""
    rides = [whole_ride(Car(f"car-{n}", lon=24.94 + n * 0.001), f"ride-{n}") for n in range(count)]
    merged = sorted((t for ride in rides for t in ride), key=lambda t: t.sim_time_s)
    return stream_records(merged)


def fact_names(store: MemoryTrackingStore, name: str) -> list[str]:
    return [o.event.subject for o in store.tables.facts(name)]  # type: ignore[misc]


def test_a_whole_ride_becomes_facts_rows_and_a_checkpoint_in_one_transaction() -> None:
    store = MemoryTrackingStore()
    records = stream_records(whole_ride(Car("car-1"), "ride-1"))
    processor(store, now=wall(0))(records, checkpoint(records))
    assert store.tables.commits == 1
    kinds = [o.event.type.rsplit(".", 1)[1] for o in store.tables.outbox]
    assert kinds == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]
    completed = store.tables.facts("TripCompleted")[0]
    assert completed.event.subject == "ride-1" and str(completed.destination) == "bus:acr-monitoring"
    assert completed.event.source == "acr.route-monitor"
    assert store.tables.checkpoints == {"shard#route-monitor#shardId-000000000000": records[-1].sequence}
    assert store.tables.rides["ride-1"].completed is True


def test_eta_updates_are_pushed_while_moving() -> None:
    store = MemoryTrackingStore()
    car = Car("car-1")
    run = processor(store, now=wall(0))
    first = stream_records([car.record(0, "TO_PICKUP", "ride-1", 3000)])
    run(first, checkpoint(first))
    second = stream_records([car.record(15, "TO_PICKUP", "ride-1", 3000, 150)], first=2)
    processor(store, now=wall(0) + seconds(2.5))(second, checkpoint(second))
    etas = store.tables.facts("RideEtaUpdated")
    assert len(etas) == 2 and etas[1].event.data["etaSeconds"] == round(2850 / 10, 1)


def test_a_replica_that_lost_the_shard_applies_nothing_and_says_so() -> None:
    store = MemoryTrackingStore()
    store.tables.leases["shard#route-monitor#shardId-000000000000"] = ("route-monitor-2", 2)
    records = stream_records(whole_ride(Car("car-1"), "ride-1"))
    stale = replace(checkpoint(records), owner="route-monitor-1", token=1)
    with pytest.raises(ShardLost):
        processor(store, now=wall(0))(records, stale)
    assert store.tables.commits == 0 and store.tables.outbox == [] and store.tables.checkpoints == {}


def test_a_big_batch_is_split_below_the_transaction_limit_with_intermediate_checkpoints() -> None:
    records = fleet_of_rides(8)
    whole, split = MemoryTrackingStore(), MemoryTrackingStore()
    processor(whole, now=WALL0 + seconds(10_000))(records, checkpoint(records))
    processor(split, now=WALL0 + seconds(10_000), max_items=20)(records, checkpoint(records))
    assert whole.tables.commits == 1 and split.tables.commits > 3
    assert max(split.tables.commit_sizes) <= 20
    assert sorted(fact_names(split, "TripCompleted")) == sorted(fact_names(whole, "TripCompleted"))
    assert len(split.tables.outbox) == len(whole.tables.outbox) == 8 * 3
    unversioned = lambda rows: {k: replace(v, version=0) for k, v in rows.items()}  # noqa: E731
    assert unversioned(split.tables.rides) == unversioned(whole.tables.rides)  # same state whatever the split
    assert split.tables.checkpoints == whole.tables.checkpoints


def test_a_crash_mid_batch_resumes_from_the_checkpoint_without_a_second_trip_completed() -> None:
    records = fleet_of_rides(6)
    tables = TrackingTables()
    commits = {"n": 0}

    def die_on_the_third_commit() -> None:
        commits["n"] += 1
        if commits["n"] == 3:
            raise Killed()

    with pytest.raises(Killed):
        processor(MemoryTrackingStore(tables, die_on_the_third_commit), max_items=20)(
            records, checkpoint(records)
        )
    assert tables.commits == 2 and tables.checkpoints  # two chunks made it, with their checkpoint
    before = len(tables.outbox)
    restarted = MemoryTrackingStore(tables)
    rest = after_checkpoint(restarted, records)
    assert 0 < len(rest) < len(records)
    processor(restarted, max_items=20)(rest, checkpoint(records))
    assert len(tables.outbox) > before
    assert sorted(fact_names(restarted, "TripCompleted")) == [f"ride-{n}" for n in range(6)]
    assert (
        len(fact_names(restarted, "TripStarted")) == 6
        and len(fact_names(restarted, "CarArrivedAtPickup")) == 6
    )
    # and processing everything once more (a reader that lost its checkpoint) adds nothing
    processor(restarted)(records, checkpoint(records))
    assert len(fact_names(restarted, "TripCompleted")) == 6


def test_a_conflict_with_the_other_shard_reads_the_state_again_and_retries() -> None:
    tables = TrackingTables()
    records = stream_records(whole_ride(Car("car-1"), "ride-1"))
    half = len(records) // 2
    processor(MemoryTrackingStore(tables))(records[:half], checkpoint(records[:half]))
    sneaked = {"done": False}

    def the_other_shard_writes_the_ride() -> None:
        if not sneaked["done"]:
            sneaked["done"] = True
            row = tables.rides["ride-1"]
            tables.rides["ride-1"] = replace(row, version=row.version + 1)

    conflicts = COUNTERS.get("trackingConflicts")
    processor(MemoryTrackingStore(tables, the_other_shard_writes_the_ride))(
        records[half:], checkpoint(records)
    )
    assert sneaked["done"] and COUNTERS.get("trackingConflicts") == conflicts + 1
    kinds = [o.event.type.rsplit(".", 1)[1] for o in tables.outbox]
    assert [k for k in kinds if k != "RideEtaUpdated"] == [
        "CarArrivedAtPickup",
        "TripStarted",
        "TripCompleted",
    ]


def test_records_that_are_not_telemetry_only_move_the_checkpoint() -> None:
    store = MemoryTrackingStore()
    records = stream_records([Car("car-1").record(0, "IDLE", None)])
    processor(store)(records, checkpoint(records))
    assert store.tables.checkpoints and store.tables.rides == {} and store.tables.cars == {}


def test_parked_cars_heartbeats_commit_nothing_but_a_checkpoint_every_ten_seconds() -> None:
    store, car, committed, now = MemoryTrackingStore(), Car("car-1"), [], [WALL0]
    tracking = TelemetryProcessor(store=store, roads=StraightRoads(), rules=RULES, clock=lambda: now[0])
    for second in range(0, 30, 2):  # a heartbeat every 2 s
        now[0] = WALL0 + seconds(second)
        records = stream_records([car.record(second, "IDLE", None)], first=second + 1)
        tracking(records, checkpoint(records))
        committed.append(store.tables.checkpoints["shard#route-monitor#shardId-000000000000"])
    assert sorted(set(committed)) == [f"{n:020d}" for n in (1, 11, 21)]  # at 0, 10 and 20 s
    assert store.tables.rides == {} and store.tables.cars == {}


def test_the_wired_app_reads_the_stream_and_serves_tracking_and_telemetry_stats() -> None:
    store, messaging = MemoryTrackingStore(), FakeMessaging()
    adapters = Adapters(messaging, store, StraightRoads(), clock=lambda: wall(500))
    records = stream_records(whole_ride(Car("car-1"), "ride-1"))
    app = SERVICE.app(
        settings=settings_for("route-monitor"), wire=lambda runtime: assemble(runtime, adapters)
    )
    with signed(TestClient(app), "bff", "route-monitor") as client:
        messaging.streams["route-monitor"](records, checkpoint(records))
        tracking = client.get("/v1/rides/ride-1/tracking")
        assert tracking.status_code == 200
        body = tracking.json()
        assert body["rideId"] == "ride-1" and body["carId"] == "car-1" and body["completed"] is True
        assert body["distanceMeters"] == 500.0 and body["durationSeconds"] == 75.0
        assert body["legs"] == [
            {
                "carId": "car-1",
                "arrived": True,
                "started": True,
                "stalled": False,
                "distanceMeters": pytest.approx(500.0),
                "progress": None,
            }
        ]
        assert body["completedAt"] == "2026-01-01T00:00:06.500Z" and body["etaPushedAt"] is None
        missing = client.get("/v1/rides/nope/tracking")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ride_not_found")
        stats = client.get("/v1/ops/telemetry").json()
        assert stats["recordsProcessed"] == len(records)
        assert stats["recordsPerSecond"] == round(len(records) / 10, 2)
        lag = wall(500) - wall(records[-1].data.sim_time_s)
        assert stats["lagMs"] == pytest.approx(lag.total_seconds() * 1000, abs=1)
        assert client.get("/healthz").json()["service"] == "route-monitor"
        assert client.get("/v1/ops/events", params={"subject": "ride-1"}).json()["events"] == []


def _cut_mid_trip(car: Car) -> list[CarTelemetry]:
    """``car``'s whole ride cut after its third TO_DESTINATION record (200 m of its 500 m trip)."""
    records = whole_ride(car, f"ride-{car.car_id}")
    cut = [n for n, r in enumerate(records) if r.phase == "TO_DESTINATION"][2]
    return records[: cut + 1]


def test_an_idle_report_away_from_the_drop_off_is_a_stall_and_at_the_drop_off_a_completion() -> None:
    store = MemoryTrackingStore()
    lost_car, done_car = Car("car-1"), Car("car-2", lon=24.95)
    trip = _cut_mid_trip(lost_car)
    reseeded = Car("car-1", at_m=-3_000).record(trip[-1].sim_time_s + 15, "IDLE", None)  # a restart lost it
    telemetry = sorted(trip + [reseeded] + whole_ride(done_car, "ride-car-2"), key=lambda t: t.sim_time_s)
    records = stream_records(telemetry)
    processor(store)(records, checkpoint(records))
    assert fact_names(store, "CarStalled") == ["ride-car-1"] and fact_names(store, "TripCompleted") == [
        "ride-car-2"
    ]
    assert not store.tables.rides["ride-car-1"].completed and store.tables.rides["ride-car-2"].completed


def _heartbeats(car: Car, sims: list[float], first: int) -> list[StreamRecord]:
    return stream_records([car.record(sim, "IDLE", None) for sim in sims], first=first)


def test_a_car_that_goes_quiet_mid_trip_while_its_shard_goes_on_stalls_once() -> None:
    store = MemoryTrackingStore()
    run = processor(store)
    trip = stream_records(_cut_mid_trip(Car("car-1")))
    run(trip, checkpoint(trip))
    last = trip[-1].data.sim_time_s  # type: ignore[attr-defined]
    parked = Car("car-2", lon=24.95)
    for n, sim in enumerate([last + 100, last + 150, last + 200, last + 269]):
        beat = _heartbeats(parked, [sim], first=100 + n)
        run(beat, checkpoint(beat))
        assert store.tables.facts("CarStalled") == []  # quiet from +150 on, lost a window later
    beat = _heartbeats(parked, [last + 270], first=200)
    run(beat, checkpoint(beat))
    assert fact_names(store, "CarStalled") == ["ride-car-1"] and store.tables.facts("TripCompleted") == []
    stall = store.tables.facts("CarStalled")[0].event.data
    assert (stall["carId"], stall["at"]) == ("car-1", clock.iso(wall(last + 270)))  # the shard's clock
    beat = _heartbeats(parked, [last + 600], first=300)
    run(beat, checkpoint(beat))
    assert len(store.tables.facts("CarStalled")) == 1


def test_a_shard_that_comes_back_watches_the_cars_that_got_a_ride_meanwhile() -> None:
    """Replica 1 reads the shard, replica 2 takes it over (car 1 starts a trip there, then goes quiet),
    the shard comes back to replica 1 under a new token: car 1 is watched and found stalled."""
    tables = TrackingTables()
    key = "shard#route-monitor#shardId-000000000000"

    def under(owner: str, token: int, records: list[StreamRecord]) -> Checkpoint:
        tables.leases[key] = (owner, token)
        return replace(checkpoint(records), owner=owner, token=token)

    first, second = processor(MemoryTrackingStore(tables)), processor(MemoryTrackingStore(tables))
    parked = Car("car-2", lon=24.95)
    beat = _heartbeats(parked, [1.0], first=1)
    first(beat, under("route-monitor-1", 1, beat))
    trip = stream_records(_cut_mid_trip(Car("car-1")), first=10)
    second(trip, under("route-monitor-2", 2, trip))
    last = trip[-1].data.sim_time_s  # type: ignore[attr-defined]
    for n, sim in enumerate([last + 130, last + 260]):
        beat = _heartbeats(parked, [sim], first=100 + n)
        first(beat, under("route-monitor-1", 3, beat))
    assert fact_names(MemoryTrackingStore(tables), "CarStalled") == ["ride-car-1"]


def test_a_restarted_processor_still_watches_the_cars_that_carry_a_ride() -> None:
    tables = TrackingTables()
    trip = stream_records(_cut_mid_trip(Car("car-1")))
    processor(MemoryTrackingStore(tables))(trip, checkpoint(trip))
    assert tables.cars["car-1"].shard == "shardId-000000000000"
    last = trip[-1].data.sim_time_s  # type: ignore[attr-defined]
    restarted = processor(MemoryTrackingStore(tables))  # knows of car 1 only from its stored cursor
    parked = Car("car-2", lon=24.95)
    for n, sim in enumerate([last + 130, last + 260]):
        beat = _heartbeats(parked, [sim], first=100 + n)
        restarted(beat, checkpoint(beat))
    assert fact_names(MemoryTrackingStore(tables), "CarStalled") == ["ride-car-1"]
