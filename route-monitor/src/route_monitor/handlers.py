"""The use case: a batch of telemetry in, tracking rows + facts + checkpoint out, in one transaction each."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import acr.clock
from acr.catalog.car import CarTelemetry
from acr.metrics import COUNTERS
from acr.stream import Checkpoint, CheckpointPace, StreamRecord
from acr.unit_of_work import MAX_TRANSACTION_ITEMS, Conflict
from route_monitor.domain import Changes, Rules, Tracker
from route_monitor.ports import Roads, TrackingStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Pending = list[tuple[str, CarTelemetry]]  # (sequence number, record)


class TelemetryStats:
    """Records processed, their rate over the last seconds, and how far behind the newest record is."""

    def __init__(self, clock: Clock = acr.clock.now, window_s: float = 10.0) -> None:
        self._clock = clock
        self._window = timedelta(seconds=window_s)
        self._lock = threading.Lock()
        self._recent: deque[tuple[datetime, int]] = deque()
        self.processed = 0
        self.last_at: datetime | None = None

    def add(self, records: list[CarTelemetry]) -> None:
        if not records:
            return
        now = self._clock()
        newest = max(r.at for r in records)
        with self._lock:
            self.processed += len(records)
            self._recent.append((now, len(records)))
            self.last_at = newest if self.last_at is None else max(self.last_at, newest)

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            while self._recent and self._recent[0][0] < now - self._window:
                self._recent.popleft()
            rate = sum(n for _, n in self._recent) / self._window.total_seconds()
            lag = None if self.last_at is None else round(_seconds(now - self.last_at) * 1000, 1)
            return {"recordsProcessed": self.processed, "recordsPerSecond": round(rate, 2), "lagMs": lag}


def _seconds(behind: timedelta) -> float:
    return max(0.0, behind.total_seconds())


@dataclass
class TelemetryProcessor:
    """The stream processor: ``processor(records, checkpoint)`` as ``Messaging.read_stream`` calls it.

    Records are applied to the state read from the store; each transaction holds the changed rows, the
    facts and the checkpoint of the last record it covers (split below the 100-item limit).
    A conflict (the other shard's reader changed a ride meanwhile) re-reads the state and tries again.
    Records that change nothing (parked cars' heartbeats) commit nothing but, at the ``checkpoints``
    pace, the checkpoint.
    """

    store: TrackingStore
    roads: Roads
    rules: Rules
    clock: Clock = acr.clock.now
    stats: TelemetryStats = field(default_factory=TelemetryStats)
    max_items: int = MAX_TRANSACTION_ITEMS
    attempts: int = 5
    checkpoints: CheckpointPace = field(default_factory=CheckpointPace)

    def __call__(self, records: list[StreamRecord], checkpoint: Checkpoint) -> None:
        pending: Pending = [(r.sequence, r.data) for r in records if isinstance(r.data, CarTelemetry)]
        tracker: Tracker | None = None
        failures = 0
        while True:
            tracker = tracker or self._load(pending)
            try:
                pending = self._commit_next(tracker, pending, checkpoint)
            except Conflict as exc:
                failures += 1
                COUNTERS.add("trackingConflicts")
                log.info(
                    "tracking conflict on %s (attempt %d): reading the state again", exc.labels, failures
                )
                if failures >= self.attempts:
                    raise
                tracker = None
                continue
            if not pending:
                return

    def _load(self, pending: Pending) -> Tracker:
        cars = self.store.cars({t.car_id for _, t in pending})
        ride_ids = {t.ride_id for _, t in pending if t.ride_id} | {
            c.ride_id for c in cars.values() if c.ride_id
        }
        return Tracker(self.rules, cars, self.store.rides(ride_ids))

    def _commit_next(self, tracker: Tracker, pending: Pending, checkpoint: Checkpoint) -> Pending:
        """Apply as many records as fit in one transaction, commit them; returns the records left."""
        done = 0
        for _, record in pending:
            if done and tracker.pending_items() + Tracker.MAX_ITEMS_PER_RECORD > self.max_items:
                break
            tracker.observe(record)
            done += 1
        tracker.flush_etas(self.clock(), self.roads.remaining)
        covered = checkpoint if done == len(pending) else replace(checkpoint, sequence=pending[done - 1][0])
        changes, now = tracker.changes(), self.clock().timestamp()
        if changes.empty and not self.checkpoints.due(covered, now):
            self.stats.add([record for _, record in pending[:done]])
            return pending[done:]
        self._commit(changes, covered)
        self.checkpoints.stored(covered, now)
        tracker.committed()
        self.stats.add([record for _, record in pending[:done]])
        for fact in changes.facts:
            COUNTERS.add(type(fact).__name__)
        return pending[done:]

    def _commit(self, changes: Changes, covered: Checkpoint) -> None:
        """The changed rows, the facts (about their ride) and the checkpoint, in one unit of work."""
        uow = self.store.unit_of_work()
        for car in changes.cars:
            uow.save_car(car)
        for ride in changes.rides:
            uow.save_ride(ride)
        for fact in changes.facts:
            uow.record(fact, subject=fact.ride_id)
        uow.checkpoint(covered)
        uow.commit()
