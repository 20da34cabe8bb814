"""The dispatcher's telemetry: live positions for dispatch from the shards this replica leases (persisted
at a bounded rate) and from the shards it only watches (in memory only), and the cars' states read back
from the table every few seconds, so each replica's view covers the whole fleet."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from acr.catalog.car import CarTelemetry
from acr.stream import Checkpoint, CheckpointPace, StreamRecord
from car_dispatcher.domain import Car
from car_dispatcher.ports import FleetView, Position

log = logging.getLogger(__name__)
PERSIST_EVERY_S = 10.0
SYNC_EVERY_S = 5.0


def moved(fleet: FleetView, records: list[StreamRecord]) -> dict[str, Position]:
    """Move the cars the records report; returns each one's latest position. As the watcher of the shards
    another replica reads (``partial(moved, fleet)``) it moves this replica's view and nothing else: nothing
    stored, no checkpoint (the other replica's reader does that)."""
    latest: dict[str, Position] = {}
    for record in records:
        if isinstance(record.data, CarTelemetry):
            fleet.moved(record.data.car_id, record.data.lat, record.data.lon)
            latest[record.data.car_id] = (record.data.lat, record.data.lon)
    return latest


class FleetSync:
    """Every ``every_s``, the cars as the table holds them (states, rides, versions) into the view: what
    other replicas reserved, released or took out of service shows here within that time."""

    def __init__(
        self, fleet: FleetView, cars: Callable[[], list[Car]], every_s: float = SYNC_EVERY_S
    ) -> None:
        self._fleet = fleet
        self._cars = cars
        self.every_s = every_s

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            try:
                self.step()
            except Exception:
                log.warning("reading the cars table failed; the view stays as it is", exc_info=True)

    def step(self) -> int:
        cars = self._cars()
        for car in cars:
            self._fleet.refresh(car)
        return len(cars)


class PositionTracker:
    """Feeds telemetry positions to the live fleet, and persists them at a bounded rate.

    A car's position is saved when it differs from the one saved last, at most once per
    ``PERSIST_EVERY_S`` (a parked car's heartbeats write nothing). A shard's checkpoint is saved with
    positions, or at that pace without any: a restart re-reads at most that much telemetry, which only
    moves cars to where they were again."""

    def __init__(
        self,
        fleet: FleetView,
        save_positions: Callable[[dict[str, Position]], None],
        save_checkpoint: Callable[[Checkpoint], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fleet = fleet
        self._save_positions = save_positions
        self._save_checkpoint = save_checkpoint
        self._clock = clock
        self._saved: dict[str, tuple[Position, float]] = {}  # car -> position saved, when
        self._checkpoints = CheckpointPace(PERSIST_EVERY_S)

    def __call__(self, records: list[StreamRecord], checkpoint: Checkpoint) -> None:
        latest = moved(self._fleet, records)
        now = self._clock()
        due = {car: position for car, position in latest.items() if self._due(car, position, now)}
        if due:
            self._save_positions(due)
            self._saved.update({car: (position, now) for car, position in due.items()})
        if due or self._checkpoints.due(checkpoint, now):
            self._save_checkpoint(checkpoint)
            self._checkpoints.stored(checkpoint, now)

    def _due(self, car: str, position: Position, now: float) -> bool:
        saved, at = self._saved.get(car, (None, -math.inf))
        return position != saved and now - at >= PERSIST_EVERY_S
