"""In-memory adapters with the DynamoDB ones' conditions (for fast tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from acr_testkit.memory import MemoryUnitOfWork

from acr.geo import haversine_m
from acr.stream import Checkpoint
from acr.unit_of_work import Outgoing
from route_monitor.domain import CarCursor, RideTracking


@dataclass
class TrackingTables:
    """The stored rows (as dicts, like DynamoDB items), the outbox and the checkpoints."""

    cars: dict[str, dict[str, Any]] = field(default_factory=dict)
    rides: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Outgoing] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)
    checkpoints: dict[str, str] = field(default_factory=dict)
    commits: int = 0
    commit_sizes: list[int] = field(default_factory=list)  # items per committed transaction

    def facts(self, name: str | None = None) -> list[Outgoing]:
        return [o for o in self.outbox if name is None or o.event.type.endswith("." + name)]


def _version(rows: dict[str, dict[str, Any]], key: str) -> int:
    row = rows.get(key)
    return int(row["version"]) if row else 0


class MemoryTrackingUnitOfWork(MemoryUnitOfWork):
    def __init__(self, tables: TrackingTables, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(tables, before_commit)
        self._tables = tables

    def _save(self, rows: dict[str, dict[str, Any]], key: str, item: dict[str, Any], label: str) -> None:
        read = int(item["version"])
        self.stage(
            lambda: None if _version(rows, key) == read else label,
            lambda: rows.__setitem__(key, item | {"version": read + 1}),
        )

    def save_car(self, car: CarCursor) -> None:
        self._save(self._tables.cars, car.car_id, car.to_dict(), "car")

    def save_ride(self, ride: RideTracking) -> None:
        self._save(self._tables.rides, ride.ride_id, ride.to_dict(), "ride")

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        item = checkpoint.item()
        self.stage(
            lambda: None, lambda: self._tables.checkpoints.__setitem__(item["shardId"], item["sequence"])
        )

    def commit(self) -> None:
        size = len(self._ops)
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
        return {c: CarCursor.from_dict(rows[c]) for c in set(car_ids) if c in rows}

    def rides(self, ride_ids: Iterable[str]) -> dict[str, RideTracking]:
        rows = self.tables.rides
        return {r: RideTracking.from_dict(rows[r]) for r in set(ride_ids) if r in rows}

    def unit_of_work(self) -> MemoryTrackingUnitOfWork:
        return MemoryTrackingUnitOfWork(self.tables, self.before_commit)


class StraightRoads:
    """Straight lines at 10 m/s: enough for ETAs in tests."""

    speed_ms = 10.0

    def remaining(self, lat: float, lon: float, to_lat: float, to_lon: float) -> tuple[float, float] | None:
        distance = haversine_m(lat, lon, to_lat, to_lon)
        return distance / self.speed_ms, distance
