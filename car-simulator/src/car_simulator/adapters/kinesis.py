"""Telemetry to Kinesis: a bounded queue drained by one publisher thread with ``PutRecords`` batches.

Order per car is kept end to end: a batch holds at most one record per car (partition key), and a
batch's failed records are retried (with backoff) before the next batch is taken, so a retry can never
overtake — or be overtaken by — a later record of the same car.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from acr import catalog
from acr.catalog.car import CarTelemetry, Target
from acr.clock import from_timestamp
from car_simulator.simulation import Report

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef

log = logging.getLogger(__name__)

MAX_BATCH = 500  # the PutRecords limit
RATE_WINDOW_S = 10.0
MAX_BACKOFF_S = 5.0


def to_record(report: Report) -> PutRecordsRequestEntryTypeDef:
    """One ``PutRecords`` entry: the CloudEvent JSON of a ``CarTelemetry``, partition key = car id."""
    t = report.telemetry
    data = CarTelemetry(
        car_id=t.car_id,
        ride_id=t.ride_id,
        phase=t.phase,
        lat=t.lat,
        lon=t.lon,
        speed_kmh=t.speed_kmh,
        heading=t.heading,
        battery=t.battery,
        odometer_m=t.odometer_m,
        target=Target(lat=t.target.lat, lon=t.target.lon) if t.target else None,
        sim_time_s=t.sim_time_s,
        at=from_timestamp(report.wall_time),
    )
    return {"Data": catalog.record(data, subject=t.car_id).to_json().encode(), "PartitionKey": t.car_id}


class TelemetryBuffer:
    """A bounded FIFO of reports. When full, periodic reports are dropped (and counted); phase changes
    are always kept, since route-monitor derives arrivals and trip completions from them."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Report] = deque()
        self._ready = threading.Condition()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)

    def offer(self, report: Report) -> bool:
        with self._ready:
            if len(self._items) >= self.capacity and not report.essential:
                self.dropped += 1
                return False
            self._items.append(report)
            self._ready.notify()
            return True

    def take(self, max_records: int = MAX_BATCH, wait_s: float = 0.25) -> list[Report]:
        """Up to ``max_records`` reports, oldest first, at most one per car (a car's later reports stay
        queued, in order, for the next batch). Waits up to ``wait_s`` for the first one."""
        with self._ready:
            if not self._items:
                self._ready.wait(wait_s)
            taken: list[Report] = []
            later: list[Report] = []
            cars: set[str] = set()
            scanned, limit = 0, 2 * max_records
            while self._items and len(taken) < max_records and scanned < limit:
                report = self._items.popleft()
                scanned += 1
                if report.telemetry.car_id in cars:
                    later.append(report)
                else:
                    cars.add(report.telemetry.car_id)
                    taken.append(report)
            self._items.extendleft(reversed(later))
            return taken

    def wake(self) -> None:
        """End a ``take`` that waits for the first report (it returns what is queued, maybe nothing)."""
        with self._ready:
            self._ready.notify_all()


class KinesisPublisher:
    """Drains a ``TelemetryBuffer`` into one stream; counts what it sent."""

    def __init__(
        self,
        kinesis: KinesisClient,
        stream: str,
        buffer: TelemetryBuffer,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kinesis = kinesis
        self._stream = stream
        self.buffer = buffer
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._sent_at: deque[tuple[float, int]] = deque()
        self.records_sent = 0
        self.put_calls = 0
        self.records_retried = 0
        self.put_failures = 0

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set (``wake`` ends the wait for the next batch)."""
        while not stop.is_set():
            batch = self.buffer.take()
            if batch:
                self.publish(batch, stop)

    def wake(self) -> None:
        self.buffer.wake()

    def publish(self, batch: list[Report], stop: threading.Event | None = None) -> int:
        """Send one batch, retrying failed records with exponential backoff and jitter until all are in
        (or ``stop`` is set). Returns how many records went in."""
        stop = stop or threading.Event()
        pending = [to_record(report) for report in batch]
        sent, attempt = 0, 0
        while pending and not stop.is_set():
            if attempt:
                stop.wait(min(MAX_BACKOFF_S, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))  # noqa: S311
            attempt += 1
            try:
                response = self._kinesis.put_records(StreamName=self._stream, Records=pending)
            except Exception as exc:  # transport errors, throttling of the whole call: retry the batch
                self._count_failure(len(pending))
                log.warning("put_records of %d records failed (%s); retrying", len(pending), exc)
                continue
            failed = [
                rec for rec, out in zip(pending, response["Records"], strict=True) if out.get("ErrorCode")
            ]
            self._count_sent(len(pending) - len(failed))
            sent += len(pending) - len(failed)
            if failed:
                self._count_failure(len(failed))
            pending = failed
        return sent

    def _count_sent(self, n: int) -> None:
        with self._lock:
            self.records_sent += n
            self.put_calls += 1
            self._sent_at.append((self._clock(), n))

    def _count_failure(self, n: int) -> None:
        with self._lock:
            self.put_failures += 1
            self.records_retried += n

    def records_per_second(self) -> float:
        """Records sent per second over the last ``RATE_WINDOW_S`` seconds."""
        now = self._clock()
        with self._lock:
            while self._sent_at and self._sent_at[0][0] < now - RATE_WINDOW_S:
                self._sent_at.popleft()
            total = sum(n for _, n in self._sent_at)
        window = min(RATE_WINDOW_S, max(1.0, now - self._started))
        return total / window

    def stats(self) -> dict[str, Any]:
        rate = self.records_per_second()
        with self._lock:
            return {
                "recordsSent": self.records_sent,
                "recordsPerSecond": round(rate, 1),
                "queueDepth": len(self.buffer),
                "recordsDropped": self.buffer.dropped,
                "putRecordsCalls": self.put_calls,
                "recordsRetried": self.records_retried,
                "stream": self._stream,
            }
