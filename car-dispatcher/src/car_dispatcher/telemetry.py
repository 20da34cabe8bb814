"""The dispatcher's own telemetry reader: live positions for dispatch, persisted at a bounded rate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from acr.catalog.car import CarTelemetry
from acr.stream import Checkpoint, CheckpointPace, StreamRecord
from car_dispatcher.ports import FleetView, Position

PERSIST_EVERY_S = 10.0


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
        latest: dict[str, Position] = {}
        for record in records:
            if isinstance(record.data, CarTelemetry):
                self._fleet.moved(record.data.car_id, record.data.lat, record.data.lon)
                latest[record.data.car_id] = (record.data.lat, record.data.lon)
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
