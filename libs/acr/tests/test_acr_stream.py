"""Reading a Kinesis stream (in-process moto): a thread per leased shard from ``run(stop)`` until ``stop``,
each batch handed over with its checkpoint, and a restarted reader resuming after the stored checkpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from acr import catalog
from acr.catalog.car import CarPhase, CarTelemetry
from acr.kinesis import KinesisReader, save_checkpoint
from acr.metrics import COUNTERS
from acr.stream import Checkpoint, StreamRecord
from acr.topology import lease_table
from acr_testkit.aws import client, in_process_tables

STREAM, CHECKPOINTS = "acr-car-telemetry", "acr-svc-leases"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    """DynamoDB with a checkpoint table, and Kinesis with a two-shard stream, on in-process moto."""
    with in_process_tables([lease_table(CHECKPOINTS)]) as dynamodb:
        kinesis = client("kinesis")
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        yield dynamodb, kinesis


def _telemetry(car: str, n: int) -> bytes:
    data = CarTelemetry(
        car_id=car,
        ride_id=None,
        phase=CarPhase.IDLE,
        lat=60.17,
        lon=24.94,
        speed_kmh=0,
        heading=0,
        battery=0.9,
        odometer_m=n,
        sim_time_s=n,
        at=datetime(2026, 12, 3, tzinfo=UTC),
    )
    return catalog.record(data, subject=car).to_json().encode()


class Collector:
    """A processor that keeps what it was given and stores each checkpoint after the batch."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.records: list[StreamRecord] = []
        self.checkpoints: list[Checkpoint] = []
        self.lock = threading.Lock()

    def __call__(self, records: list[StreamRecord], checkpoint: Checkpoint) -> None:
        with self.lock:
            self.records += records
            self.checkpoints.append(checkpoint)
        save_checkpoint(self.dynamodb, checkpoint)

    def odometers(self) -> list[float]:
        with self.lock:
            return sorted(float(r.data.odometer_m) for r in self.records if isinstance(r.data, CarTelemetry))


def _reader(dynamodb: Any, kinesis: Any, collector: Collector) -> KinesisReader:
    return KinesisReader(
        reader="svc",
        kinesis=kinesis,
        dynamodb=dynamodb,
        stream=STREAM,
        checkpoint_table=CHECKPOINTS,
        processor=collector,
        replica="svc-1",
        poll_s=0.05,
        idle_poll_s=0.1,
    )


def _run_until(reader: KinesisReader, collector: Collector, count: int) -> float:
    """Run the reader in a thread until ``count`` records arrived; stop it; how long the stop took."""
    stop = threading.Event()
    runner = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    runner.start()
    deadline = time.monotonic() + 10
    while len(collector.odometers()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    stopped = time.monotonic()
    stop.set()
    runner.join(5)
    assert not runner.is_alive()
    return time.monotonic() - stopped


def test_run_reads_every_shard_until_stop_and_resumes_after_the_checkpoint(aws: tuple[Any, Any]) -> None:
    dynamodb, kinesis = aws
    for n in range(6):
        kinesis.put_record(StreamName=STREAM, Data=_telemetry(f"car_{n}", n), PartitionKey=f"car_{n}")
    first = Collector(dynamodb)
    reader = _reader(dynamodb, kinesis, first)
    assert len(reader.shards()) == 2
    assert _run_until(reader, first, 6) < 1  # every shard thread waits on the stop event
    assert first.odometers() == [0, 1, 2, 3, 4, 5]
    for checkpoint in first.checkpoints:
        assert reader.checkpoint(checkpoint.shard_id) is not None

    for n in range(6, 9):
        kinesis.put_record(StreamName=STREAM, Data=_telemetry(f"car_{n}", n), PartitionKey=f"car_{n}")
    again = Collector(dynamodb)
    _run_until(_reader(dynamodb, kinesis, again), again, 3)
    assert again.odometers() == [6, 7, 8]  # nothing before the stored checkpoints is read again


def test_a_record_that_is_not_a_catalog_event_is_skipped_and_counted(aws: tuple[Any, Any]) -> None:
    dynamodb, kinesis = aws
    poison_before = COUNTERS.get("poisonRecords")
    kinesis.put_record(StreamName=STREAM, Data=b"{not an event", PartitionKey="car_1")
    kinesis.put_record(StreamName=STREAM, Data=_telemetry("car_1", 1), PartitionKey="car_1")
    collector = Collector(dynamodb)
    _run_until(_reader(dynamodb, kinesis, collector), collector, 1)
    assert collector.odometers() == [1]
    assert COUNTERS.get("poisonRecords") == poison_before + 1
    assert [type(r.data) for r in collector.records] == [CarTelemetry]  # the processor never sees it


def test_run_returns_at_once_when_stop_is_already_set(aws: tuple[Any, Any]) -> None:
    dynamodb, kinesis = aws
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    _reader(dynamodb, kinesis, Collector(dynamodb)).run(stop)
    assert time.monotonic() - started < 1
