"""Telemetry through a real Kinesis stream and DynamoDB (moto server, or LocalStack when Docker answers):
facts land in the outbox exactly once in effect, across a crash in the middle of a batch."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from route_monitor_fakes import WALL0, Car, StraightRoads, seconds, whole_ride

from acr import aws, catalog, dynamo
from acr.catalog.base import TELEMETRY_STREAM
from acr.envelope import CloudEvent
from acr.kinesis import KinesisReader
from acr.loops import Loops
from acr.runtime import Messaging
from acr.settings import Settings
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr_testkit.emulator import aws_emulator
from route_monitor.adapters.dynamo import DynamoTrackingStore
from route_monitor.domain import Rules
from route_monitor.handlers import TelemetryProcessor
from route_monitor.topology import CHECKPOINTS, READER, TOPOLOGY, TRACKING

pytestmark = pytest.mark.integration
RIDES = 4


class Killed(BaseException):
    """SIGKILL: the process is gone, nothing after this point happens (not an Exception: no retry)."""


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with aws_emulator() as url:
        s = Settings(aws_endpoint_url=url)
        apply(discover(), Clients(lambda name: aws.client(name, s)))
        yield s


class CrashingStore:
    """The Dynamo store, except that the process dies instead of making commit number ``after + 1``."""

    def __init__(self, inner: DynamoTrackingStore, stop: threading.Event, after: int) -> None:
        self.inner, self.stop, self.after = inner, stop, after
        self.commits = 0
        self._lock = threading.Lock()

    def cars(self, car_ids: Any) -> Any:
        return self.inner.cars(car_ids)

    def rides(self, ride_ids: Any) -> Any:
        return self.inner.rides(ride_ids)

    def carrying(self) -> Any:
        return self.inner.carrying()

    def unit_of_work(self) -> Any:
        uow = self.inner.unit_of_work()
        commit = uow.commit

        def commit_or_die() -> None:
            with self._lock:
                self.commits += 1
                dead = self.commits > self.after
            if dead:
                self.stop.set()
                raise Killed()
            commit()

        uow.commit = commit_or_die  # type: ignore[method-assign]
        return uow


def _put_rides(settings: Settings) -> dict[str, str]:
    """Every car's whole ride into the stream (partition key = car id); the last sequence of each shard."""
    kinesis = aws.client("kinesis", settings)
    telemetry = [
        t for n in range(RIDES) for t in whole_ride(Car(f"car-it-{n}", lon=24.94 + n * 0.001), f"ride-it-{n}")
    ]
    telemetry.sort(key=lambda t: t.sim_time_s)  # stable: per car the records stay in order
    last: dict[str, str] = {}
    for start in range(0, len(telemetry), 20):
        chunk = telemetry[start : start + 20]
        entries = [
            {"Data": catalog.record(t, subject=t.car_id).to_json().encode(), "PartitionKey": t.car_id}
            for t in chunk
        ]
        response = kinesis.put_records(StreamName=TELEMETRY_STREAM, Records=entries)
        assert response.get("FailedRecordCount", 0) == 0
        for entry in response["Records"]:
            last[entry["ShardId"]] = entry["SequenceNumber"]
    return last


def _processor(messaging: Messaging, store: Any) -> TelemetryProcessor:
    return TelemetryProcessor(
        store=store,
        roads=StraightRoads(),
        rules=Rules(stall_window_s=120, eta_push_s=2),
        clock=lambda: WALL0 + seconds(86_400),
        max_items=14,
    )


def _run(
    reader: KinesisReader, stop: threading.Event, until: dict[str, str] | None, timeout_s: float = 60
) -> None:
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        if until is not None and all(reader.checkpoint(shard) == seq for shard, seq in until.items()):
            break
        time.sleep(0.2)
    stop.set()
    thread.join(10)


def _facts(messaging: Messaging) -> Counter[tuple[str, str]]:
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = messaging.dynamodb.scan(TableName=TOPOLOGY.outbox_table, ConsistentRead=True, **kwargs)
        rows += [dynamo.from_item(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    events = [CloudEvent.from_json(r["event"]) for r in rows]
    return Counter((e.type.rsplit(".", 1)[1], e.subject or "") for e in events)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the simulated SIGKILL
def test_telemetry_to_facts_exactly_once_in_effect_across_a_crash(settings: Settings) -> None:
    last = _put_rides(settings)

    # 1. the process dies in the middle of a batch, after a few committed transactions
    messaging = Messaging(TOPOLOGY, settings, Loops())
    stop = threading.Event()
    crashing = CrashingStore(DynamoTrackingStore(messaging.dynamodb, messaging.unit_of_work), stop, after=3)
    reader = messaging.read_stream(READER, TELEMETRY_STREAM, CHECKPOINTS, _processor(messaging, crashing))
    _run(reader, stop, until=None, timeout_s=30)
    assert crashing.commits > 3, "the crash happened"
    # it died mid-batch: a checkpoint stands at an intermediate record of a batch
    assert any(reader.checkpoint(shard) not in (None, seq) for shard, seq in last.items())
    assert sum(_facts(messaging).values()) < 3 * RIDES

    # 2. a new process resumes from the committed checkpoints and catches up
    restarted = Messaging(TOPOLOGY, settings, Loops())
    store = DynamoTrackingStore(restarted.dynamodb, restarted.unit_of_work)
    reader = restarted.read_stream(READER, TELEMETRY_STREAM, CHECKPOINTS, _processor(restarted, store))
    _run(reader, threading.Event(), until=last)
    assert all(reader.checkpoint(shard) == seq for shard, seq in last.items())
    facts = _facts(restarted)
    for n in range(RIDES):
        ride = f"ride-it-{n}"
        assert [facts[(kind, ride)] for kind in ("CarArrivedAtPickup", "TripStarted", "TripCompleted")] == [
            1,
            1,
            1,
        ]
    tracking = store.rides([f"ride-it-{n}" for n in range(RIDES)])
    assert all(t.completed and round(t.distance_m) == 500 and t.duration_s == 75 for t in tracking.values())
    row = dynamo.get(restarted.dynamodb, TRACKING, {"rideId": "ride-it-0"})
    assert row is not None and row["completed"] is True

    # 3. a reader replaying the whole stream (new checkpoints) derives nothing new from the stored state
    replay = restarted.read_stream(
        "route-monitor-replay", TELEMETRY_STREAM, CHECKPOINTS, _processor(restarted, store)
    )
    _run(replay, threading.Event(), until=last)
    assert _facts(restarted) == facts
