"""The telemetry publisher: batches, partition keys, order per car, retries, back-pressure, rate."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from car_simulator_fakes import FakeKinesis

from acr.catalog.car import CarPhase, CarTelemetry
from acr.loops import Loops
from acr.stream import decode_record
from car_simulator.adapters.kinesis import MAX_BATCH, KinesisPublisher, TelemetryBuffer
from car_simulator.domain import Point, Telemetry
from car_simulator.simulation import Report

STREAM = "acr-car-telemetry"


def _report(car: int, seq: float = 0.0, essential: bool = False, phase: CarPhase = CarPhase.IDLE) -> Report:
    t = Telemetry(
        car_id=f"car-{car:05d}",
        ride_id="r1" if phase is not CarPhase.IDLE else None,
        phase=phase,
        lat=60.17,
        lon=24.94,
        speed_kmh=0.0,
        heading=90.0,
        battery=80.0,
        odometer_m=12.5,
        target=Point(60.18, 24.95) if phase is CarPhase.TO_PICKUP else None,
        sim_time_s=seq,
    )
    return Report(t, wall_time=1_767_225_600.25, essential=essential)


def _as_stream_record(entry: dict[str, object], n: int = 0) -> dict[str, object]:
    return {"Data": entry["Data"], "PartitionKey": entry["PartitionKey"], "SequenceNumber": str(n)}


def test_records_are_cloudevents_of_car_telemetry_keyed_by_car() -> None:
    kinesis = FakeKinesis()
    publisher = KinesisPublisher(kinesis, STREAM, TelemetryBuffer())
    assert publisher.publish([_report(7, 12.5, phase=CarPhase.TO_PICKUP)]) == 1
    [entry] = kinesis.delivered
    assert entry["PartitionKey"] == "car-00007"
    decoded = decode_record(_as_stream_record(entry))
    assert decoded is not None and isinstance(decoded.data, CarTelemetry)
    assert decoded.event.type == "acme.acr.car.CarTelemetry" and decoded.event.subject == "car-00007"
    data = decoded.data
    assert (data.car_id, data.ride_id, data.phase, data.sim_time_s) == ("car-00007", "r1", "TO_PICKUP", 12.5)
    assert data.target is not None and (data.target.lat, data.target.lon) == (60.18, 24.95)
    assert data.at == datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    assert json.loads(entry["Data"])["data"]["odometerM"] == 12.5  # camelCase on the wire


def test_batches_hold_at_most_500_records_and_one_per_car_in_order() -> None:
    buffer = TelemetryBuffer()
    for car in range(1, 1201):
        buffer.offer(_report(car))
    for seq in (1.0, 2.0):
        buffer.offer(_report(1, seq))
    batches = []
    while len(buffer):
        batches.append(buffer.take(wait_s=0))
    assert [len(b) for b in batches] == [MAX_BATCH, MAX_BATCH, 201, 1]  # car 1 twice more: two batches
    for batch in batches:
        cars = [r.telemetry.car_id for r in batch]
        assert len(cars) == len(set(cars))
    car_1 = [r.telemetry.sim_time_s for b in batches for r in b if r.telemetry.car_id == "car-00001"]
    assert car_1 == [0.0, 1.0, 2.0]


def test_failed_records_are_retried_before_anything_else_and_counted() -> None:
    kinesis = FakeKinesis(fail=[{1, 3}, RuntimeError("connection reset"), set()])
    publisher = KinesisPublisher(kinesis, STREAM, TelemetryBuffer())
    sent = publisher.publish([_report(car) for car in range(1, 6)])
    assert sent == 5 and publisher.records_sent == 5
    assert [len(call) for call in kinesis.calls] == [5, 2, 2]
    assert [e["PartitionKey"] for e in kinesis.calls[1]] == ["car-00002", "car-00004"]
    assert sorted(e["PartitionKey"] for e in kinesis.delivered) == [f"car-{i:05d}" for i in range(1, 6)]
    assert publisher.stats()["recordsRetried"] == 4


def test_a_full_queue_drops_heartbeats_but_never_phase_changes() -> None:
    buffer = TelemetryBuffer(capacity=2)
    assert buffer.offer(_report(1)) and buffer.offer(_report(2))
    assert not buffer.offer(_report(3))
    assert buffer.offer(_report(4, essential=True, phase=CarPhase.BOARDING))
    assert len(buffer) == 3 and buffer.dropped == 1


def test_the_publisher_loop_drains_the_queue_reports_its_rate_and_stops_at_once() -> None:
    now = [1000.0]
    kinesis = FakeKinesis()
    publisher = KinesisPublisher(kinesis, STREAM, TelemetryBuffer(), clock=lambda: now[0])
    for car in range(1, 301):
        publisher.buffer.offer(_report(car))
    loops = Loops()
    loops.add("telemetry-publisher", publisher.run)
    loops.on_stop(publisher.wake)
    loops.start()
    deadline = time.monotonic() + 2
    while publisher.records_sent < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the loop is waiting for the next report now
    stopping = time.monotonic()
    loops.stop(2)
    assert time.monotonic() - stopping < 0.1  # woken, not left to its wait for reports
    assert publisher.records_sent == 300 and len(publisher.buffer) == 0
    now[0] += 10.0
    stats = publisher.stats()
    assert stats["recordsPerSecond"] == pytest.approx(30.0) and stats["queueDepth"] == 0
    now[0] += 11.0
    assert publisher.records_per_second() == 0.0
