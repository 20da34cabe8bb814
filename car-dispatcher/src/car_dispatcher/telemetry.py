"""The dispatcher's own telemetry reader: live positions for dispatch, persisted at a bounded rate."""

from __future__ import annotations

import time
from collections.abc import Callable

from acr.catalog import CarTelemetry
from acr.stream import Checkpoint, StreamRecord
from car_dispatcher.adapters.fleet_view import LiveFleet

PERSIST_EVERY_S = 10.0


class PositionTracker:
    """Feeds telemetry positions to the live fleet; saves them and the checkpoint after each batch."""

    def __init__(
        self,
        fleet: LiveFleet,
        save_positions: Callable[[dict[str, tuple[float, float]]], None],
        save_checkpoint: Callable[[Checkpoint], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fleet = fleet
        self._save_positions = save_positions
        self._save_checkpoint = save_checkpoint
        self._clock = clock
        self._saved_at: dict[str, float] = {}

    def __call__(self, records: list[StreamRecord], checkpoint: Checkpoint) -> None:
        latest: dict[str, tuple[float, float]] = {}
        for record in records:
            if isinstance(record.data, CarTelemetry):
                self._fleet.moved(record.data.car_id, record.data.lat, record.data.lon)
                latest[record.data.car_id] = (record.data.lat, record.data.lon)
        now = self._clock()
        due = {
            car: pos
            for car, pos in latest.items()
            if now - self._saved_at.get(car, -PERSIST_EVERY_S) >= PERSIST_EVERY_S
        }
        self._save_positions(due)
        self._saved_at.update(dict.fromkeys(due, now))
        self._save_checkpoint(checkpoint)
