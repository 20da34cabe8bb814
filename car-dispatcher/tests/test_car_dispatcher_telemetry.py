"""The dispatcher's telemetry reader: every position reaches the live fleet; few reach the table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from acr import catalog
from acr.catalog.car import CarPhase, CarTelemetry
from acr.stream import Checkpoint, StreamRecord
from acr_city import Bounds
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.domain import Car, CarState
from car_dispatcher.telemetry import PERSIST_EVERY_S, PositionTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(sequence: int, car_id: str, lat: float) -> StreamRecord:
    data = CarTelemetry(
        car_id=car_id,
        ride_id=None,
        phase=CarPhase.IDLE,
        lat=lat,
        lon=24.94,
        speed_kmh=0.0,
        heading=0.0,
        battery=1.0,
        odometer_m=0.0,
        sim_time_s=float(sequence),
        at=datetime(2026, 12, 2, tzinfo=UTC),
    )
    return StreamRecord(str(sequence), car_id, catalog.record(data, subject=car_id), data)


def _checkpoint(sequence: int) -> Checkpoint:
    return Checkpoint("acr-car-dispatcher-checkpoints", "car-dispatcher", "shard-0", str(sequence))


def test_a_moving_car_is_saved_at_a_bounded_rate_and_a_parked_one_not_at_all() -> None:
    fleet = LiveFleet(Bounds(24.9, 60.1, 25.0, 60.2), [Car("car-1", CarState.AVAILABLE, 60.15, 24.94)])
    saved: list[dict[str, tuple[float, float]]] = []
    checkpoints: list[str] = []
    clock = Clock()
    tracker = PositionTracker(fleet, saved.append, lambda c: checkpoints.append(c.sequence), clock)

    tracker([_record(1, "car-1", 60.151)], _checkpoint(1))
    clock.now += 1
    tracker([_record(2, "car-1", 60.152)], _checkpoint(2))  # moved again, too soon to save
    assert fleet.nearest_available(60.152, 24.94, 1)[0].lat == 60.152
    assert saved == [{"car-1": (60.151, 24.94)}] and checkpoints == ["1"]

    clock.now += PERSIST_EVERY_S
    tracker([_record(3, "car-1", 60.152)], _checkpoint(3))  # its last position, now due
    assert saved[-1] == {"car-1": (60.152, 24.94)} and checkpoints[-1] == "3"

    for sequence in range(4, 10):  # parked: the same position, heartbeat after heartbeat
        clock.now += PERSIST_EVERY_S / 2
        tracker([_record(sequence, "car-1", 60.152)], _checkpoint(sequence))
    assert len(saved) == 2
    assert checkpoints == ["1", "3", "5", "7", "9"]  # without positions, once per PERSIST_EVERY_S


def test_each_shard_keeps_its_own_checkpoint_pace() -> None:
    fleet = LiveFleet(Bounds(24.9, 60.1, 25.0, 60.2), [Car("car-1", CarState.AVAILABLE, 60.15, 24.94)])
    checkpoints: list[tuple[str, str]] = []
    clock = Clock()
    tracker = PositionTracker(
        fleet, lambda _: None, lambda c: checkpoints.append((c.shard_id, c.sequence)), clock
    )
    for sequence in range(1, 6):  # the same parked car, one record on each shard every 4 s
        clock.now += 4
        for shard in ("shard-0", "shard-1"):
            tracker([_record(sequence, "car-1", 60.15)], replace(_checkpoint(sequence), shard_id=shard))
    assert [c for c in checkpoints if c[0] == "shard-1"] == [("shard-1", "1"), ("shard-1", "4")]
