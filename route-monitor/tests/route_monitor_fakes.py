"""Test doubles of route-monitor: in-memory adapters of its ports with the DynamoDB ones' conditions,
straight-line roads, and synthetic telemetry (cars driving north in straight lines)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from acr import catalog
from acr.catalog.car import CarPhase, CarTelemetry, Target
from acr.geo import haversine_m
from acr.stream import Checkpoint, StreamRecord
from acr.unit_of_work import Outgoing
from acr_testkit.memory import Apply, Check, MemoryUnitOfWork, MessageStore
from route_monitor.domain import CarCursor, RideTracking

# ------------------------------------------------------------------------------------------ adapters

Row = TypeVar("Row", CarCursor, RideTracking)


@dataclass
class TrackingTables(MessageStore):
    """The stored rows, the outbox, the checkpoints and who holds each shard's lease."""

    cars: dict[str, CarCursor] = field(default_factory=dict)
    rides: dict[str, RideTracking] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    leases: dict[str, tuple[str, int]] = field(default_factory=dict)  # lease key -> (owner, token)
    commits: int = 0
    commit_sizes: list[int] = field(default_factory=list)  # items per committed transaction

    def facts(self, name: str | None = None) -> list[Outgoing]:
        return [o for o in self.outbox if name is None or o.event.type.endswith("." + name)]


class MemoryTrackingUnitOfWork(MemoryUnitOfWork):
    """Rows are stored at their read ``version`` + 1, like the DynamoDB unit of work (which keeps no
    consumed-message markers either: route-monitor has no inbox)."""

    def __init__(self, tables: TrackingTables, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(tables, before_commit, marked=False)
        self._tables = tables
        self._staged = 0

    def stage(self, check: Check, apply: Apply) -> None:
        self._staged += 1
        super().stage(check, apply)

    def save_car(self, car: CarCursor) -> None:
        self._save(self._tables.cars, car.car_id, copy.deepcopy(car), "car")

    def save_ride(self, ride: RideTracking) -> None:
        self._save(self._tables.rides, ride.ride_id, copy.deepcopy(ride), "ride")

    def _save(self, rows: dict[str, Row], key: str, row: Row, label: str) -> None:
        read = row.version

        def check() -> str | None:
            current = rows.get(key)
            return None if (current.version if current else 0) == read else label

        row.version = read + 1
        self.stage(check, lambda: rows.__setitem__(key, row))

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        """Stored only under the shard's lease (a shard nobody leased counts as owner "" with token 0)."""
        key = checkpoint.item()["leaseKey"]

        def check() -> str | None:
            held = self._tables.leases.get(key, ("", 0))
            return None if held == (checkpoint.owner, checkpoint.token) else "checkpoint"

        self.stage(check, lambda: self._tables.checkpoints.__setitem__(key, checkpoint.sequence))

    def commit(self) -> None:
        size, self._staged = self._staged, 0
        super().commit()
        self._tables.commits += 1
        self._tables.commit_sizes.append(size)


class MemoryTrackingStore:
    def __init__(
        self, tables: TrackingTables | None = None, before_commit: Callable[[], None] | None = None
    ) -> None:
        self.tables = tables or TrackingTables()
        self.before_commit = before_commit

    def cars(self, car_ids: Iterable[str]) -> dict[str, CarCursor]:
        rows = self.tables.cars
        return {c: copy.deepcopy(rows[c]) for c in set(car_ids) if c in rows}

    def carrying(self) -> list[CarCursor]:
        return [copy.deepcopy(c) for c in self.tables.cars.values() if c.ride_id is not None]

    def rides(self, ride_ids: Iterable[str]) -> dict[str, RideTracking]:
        rows = self.tables.rides
        return {r: copy.deepcopy(rows[r]) for r in set(ride_ids) if r in rows}

    def unit_of_work(self) -> MemoryTrackingUnitOfWork:
        return MemoryTrackingUnitOfWork(self.tables, self.before_commit)


class StraightRoads:
    """Straight lines at 10 m/s: enough for ETAs in tests."""

    speed_ms = 10.0

    def remaining(self, lat: float, lon: float, to_lat: float, to_lon: float) -> tuple[float, float] | None:
        distance = haversine_m(lat, lon, to_lat, to_lon)
        return distance / self.speed_ms, distance


# ----------------------------------------------------------------------------------------- telemetry

WALL0 = datetime(2026, 1, 1, tzinfo=UTC)
SIM_SPEED = 30.0
M_PER_DEG_LAT = 111_195.0
LAT0, LON0 = 60.160, 24.940


def north(meters: float, lat: float = LAT0) -> float:
    return lat + meters / M_PER_DEG_LAT


def wall(sim: float) -> datetime:
    """The wall time at which the simulator emits the record of simulated second ``sim`` (to the
    millisecond, as the records carry it)."""
    return WALL0 + timedelta(milliseconds=round(sim / SIM_SPEED * 1000))


def seconds(s: float) -> timedelta:
    return timedelta(seconds=s)


class Car:
    """A car on the meridian LON0 whose position is ``at_m`` metres north of LAT0."""

    def __init__(self, car_id: str, at_m: float = 0.0, lon: float = LON0) -> None:
        self.car_id = car_id
        self.at_m = at_m
        self.lon = lon
        self.odometer = 10_000.0

    def record(
        self, sim: float, phase: str, ride_id: str | None, target_m: float | None = None, move_m: float = 0.0
    ) -> CarTelemetry:
        self.at_m += move_m
        self.odometer += abs(move_m)
        target = Target(lat=north(target_m), lon=self.lon) if target_m is not None else None
        return CarTelemetry(
            car_id=self.car_id,
            ride_id=ride_id,
            phase=CarPhase(phase),
            lat=north(self.at_m),
            lon=self.lon,
            speed_kmh=24.0 if move_m else 0.0,
            heading=0.0,
            battery=80.0,
            odometer_m=self.odometer,
            target=target,
            sim_time_s=sim,
            at=wall(sim),
        )


def whole_ride(
    car: Car,
    ride_id: str,
    t0: float = 0.0,
    pickup_m: float = 400.0,
    trip_m: float = 500.0,
    step_m: float = 100.0,
    step_s: float = 15.0,
    boarding_s: float = 60.0,
) -> list[CarTelemetry]:
    """TO_PICKUP step by step, BOARDING, TO_DESTINATION, IDLE at the drop-off; phase changes recorded."""
    out: list[CarTelemetry] = []
    sim = t0
    pickup_at = car.at_m + pickup_m
    dropoff_at = pickup_at + trip_m
    out.append(car.record(sim, "TO_PICKUP", ride_id, pickup_at))
    while car.at_m + step_m < pickup_at - 1e-6:
        sim += step_s
        out.append(car.record(sim, "TO_PICKUP", ride_id, pickup_at, step_m))
    sim += step_s
    out.append(car.record(sim, "BOARDING", ride_id, pickup_at, pickup_at - car.at_m))
    sim += boarding_s
    out.append(car.record(sim, "TO_DESTINATION", ride_id, dropoff_at))
    while car.at_m + step_m < dropoff_at - 1e-6:
        sim += step_s
        out.append(car.record(sim, "TO_DESTINATION", ride_id, dropoff_at, step_m))
    sim += step_s
    out.append(car.record(sim, "TO_DESTINATION", ride_id, dropoff_at, dropoff_at - car.at_m))
    out.append(car.record(sim, "IDLE", None))
    return out


def stream_records(telemetry: list[CarTelemetry], first: int = 1) -> list[StreamRecord]:
    """Telemetry as the Kinesis reader hands it over (increasing sequence numbers)."""
    records = []
    for n, t in enumerate(telemetry, start=first):
        event = catalog.record(t, subject=t.car_id)
        records.append(StreamRecord(f"{n:020d}", t.car_id, event, t))
    return records


def names(facts: Sequence[object]) -> list[str]:
    return [type(f).__name__ for f in facts]
