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
from acr.stream import Checkpoint, CheckpointPace, ShardLost, StreamRecord
from acr.unit_of_work import MAX_TRANSACTION_ITEMS, Conflict
from route_monitor.domain import CarCursor, Changes, QuietCars, Rules, Tracker
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
    A conflict (the other shard's reader changed a ride meanwhile) re-reads the state and tries again; a
    refused checkpoint (this replica lost the shard's lease) raises ``ShardLost``: the batch is not applied.
    Records that change nothing (parked cars' heartbeats) commit nothing but, at the ``checkpoints``
    pace, the checkpoint.

    After each batch, the cars of its shard that carry a ride and went quiet (``QuietCars``, seeded from
    the stored cursors that carry a ride each time the shard's lease is gained) are settled:
    ``Tracker.lost``, committed without a checkpoint (the facts are derived from stored state, and the
    rows say they were).
    """

    store: TrackingStore
    roads: Roads
    rules: Rules
    clock: Clock = acr.clock.now
    stats: TelemetryStats = field(default_factory=TelemetryStats)
    max_items: int = MAX_TRANSACTION_ITEMS
    attempts: int = 5
    checkpoints: CheckpointPace = field(default_factory=CheckpointPace)
    quiet: QuietCars = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _seeded: dict[str, int] = field(init=False, default_factory=dict)  # shard -> lease token seeded under
    _carrying: list[CarCursor] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.quiet = QuietCars(self.rules.stall_window_s, self.rules.handover_s)

    def __call__(self, records: list[StreamRecord], checkpoint: Checkpoint) -> None:
        pending: Pending = [(r.sequence, r.data) for r in records if isinstance(r.data, CarTelemetry)]
        shard = checkpoint.shard_id
        self._seed(shard, checkpoint.token)
        for _, record in pending:
            self.quiet.observe(shard, record)
        self._apply(pending, checkpoint)
        self._sweep(shard)

    def _apply(self, pending: Pending, checkpoint: Checkpoint) -> None:
        tracker: Tracker | None = None
        failures = 0
        while True:
            tracker = tracker or self._load(pending, checkpoint.shard_id)
            try:
                pending = self._commit_next(tracker, pending, checkpoint)
            except Conflict as exc:
                if "checkpoint" in exc.labels:
                    raise ShardLost(checkpoint.shard_id) from exc  # another replica holds the shard now
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

    def _load(self, pending: Pending, shard: str) -> Tracker:
        return self._tracker(
            {t.car_id for _, t in pending}, {t.ride_id for _, t in pending if t.ride_id}, shard
        )

    def _tracker(self, car_ids: set[str], ride_ids: set[str], shard: str) -> Tracker:
        """A tracker on the stored cursors of ``car_ids``, ``ride_ids`` and the rides those cars carry."""
        cars = self.store.cars(car_ids)
        rides = ride_ids | {c.ride_id for c in cars.values() if c.ride_id}
        return Tracker(self.rules, cars, self.store.rides(rides), shard=shard)

    def _seed(self, shard: str, token: int) -> None:
        """Each time this replica gains ``shard`` (a new lease token): the stored cars of the shard that
        carry a ride are watched from the start. A shard that comes back forgets what was watched before:
        another replica went on with it meanwhile, so the stored cursors are read again."""
        with self._lock:
            if self._seeded.get(shard) == token:
                return
            back = shard in self._seeded
            if self._carrying is None or back:
                self._carrying = self.store.carrying()
            self._seeded[shard] = token
            carrying = self._carrying
        if back:
            self.quiet.drop(shard)
        for cursor in carrying:
            if cursor.shard == shard and cursor.sim_time is not None:
                self.quiet.watch(shard, cursor.car_id, cursor.sim_time)

    def _sweep(self, shard: str) -> None:
        """The lost cars of ``shard``: a trip completed at its drop-off, or a stall (``Tracker.lost``). A
        conflict leaves them to the next batch."""
        lost, clock = self.quiet.lost(shard), self.quiet.clock(shard)
        if not lost or clock is None:
            return
        tracker = self._tracker(set(lost), set(), shard)
        for car_id in lost:
            tracker.lost(car_id, *clock)
        changes = tracker.changes()
        if not changes.empty:
            try:
                self._commit(changes, None)
            except Conflict as exc:
                COUNTERS.add("trackingConflicts")
                log.info("tracking conflict on %s settling lost cars: next batch", exc.labels)
                return
            self._counted(changes)
            facts = [type(f).__name__ for f in changes.facts]
            log.warning("cars %s went quiet with a ride: %s", lost, facts)
        for car_id in lost:
            self.quiet.forget(shard, car_id)

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
        self._counted(changes)
        return pending[done:]

    @staticmethod
    def _counted(changes: Changes) -> None:
        for fact in changes.facts:
            COUNTERS.add(type(fact).__name__)

    def _commit(self, changes: Changes, covered: Checkpoint | None) -> None:
        """The changed rows, the facts (about their ride) and the checkpoint (if any), in one unit of work."""
        uow = self.store.unit_of_work()
        for car in changes.cars:
            uow.save_car(car)
        for ride in changes.rides:
            uow.save_ride(ride)
        for fact in changes.facts:
            uow.record(fact, subject=fact.ride_id)
        if covered is not None:
            uow.checkpoint(covered)
        uow.commit()
