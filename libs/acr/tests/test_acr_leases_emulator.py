"""Leases and leased Kinesis shards against the emulator process (moto server): conditional writes from
concurrent clients, shards moving between readers."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from acr import aws, catalog
from acr.catalog.car import CarPhase, CarTelemetry
from acr.dynamo import Transaction, TransactionCancelled, commit
from acr.kinesis import KinesisReader, stage_checkpoint
from acr.leases import Lease, LeaseTable
from acr.settings import Settings
from acr.stream import Checkpoint, StreamRecord, shard_lease_key
from acr.topology import ServiceTopology, Table
from acr.topology.apply import create_table
from acr_testkit.emulator import moto_server

pytestmark = pytest.mark.integration

PROCESSED = "acr-svc-processed"
SERVICE = ServiceTopology("svc", leases=True, tables=(Table(PROCESSED, "eventId"),))
LEASE_S = 2.0


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with moto_server() as url:
        s = Settings(aws_endpoint_url=url, replica="test")
        for table in SERVICE.all_tables():
            create_table(aws.client("dynamodb", s), table)
        yield s


def test_of_replicas_racing_for_one_key_exactly_one_wins_each_time(settings: Settings) -> None:
    """Eight replicas, each with its own client, try to take the same lease at once, four times over
    (each time after the previous holder released it): one wins each round, with the next token."""
    for round_ in range(4):
        tables = [
            LeaseTable(aws.client("dynamodb", settings), SERVICE.leases_table, f"r{i}", 30.0)
            for i in range(8)
        ]
        won = [lease for lease in _race(tables, "job#race") if lease is not None]
        assert len(won) == 1
        assert won[0].token == round_ + 1
        tables[0].release(won[0])
    assert tables[0].all("job#")[0].token == 4


def _race(tables: list[LeaseTable], key: str) -> list[Lease | None]:
    """Every table's ``acquire(key)`` at the same moment, each from its own thread."""
    start = threading.Barrier(len(tables))
    results: list[Lease | None] = [None] * len(tables)

    def race(i: int, table: LeaseTable) -> None:
        start.wait()
        results[i] = table.acquire(key)

    threads = [threading.Thread(target=race, args=(i, t)) for i, t in enumerate(tables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# --- leased shards -------------------------------------------------------------------------------------
class Broken:
    """A client that fails every call once ``down``: the replica died (nothing it does reaches AWS)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.down = False

    def __getattr__(self, name: str) -> Any:
        if self.down:
            raise ConnectionError("this replica is dead")
        return getattr(self._client, name)


class Replica:
    """One replica's reader of ``stream``: each batch counted into ``acr-svc-processed`` (one row per
    record, ``count`` + 1) with the checkpoint, in one transaction; what its watcher saw."""

    def __init__(self, settings: Settings, stream: str, name: str) -> None:
        self.name = name
        self.dynamodb = Broken(aws.client("dynamodb", settings))
        self.watched: list[StreamRecord] = []
        self.reader = KinesisReader(
            reader=stream,  # a reader of its own per test stream
            kinesis=aws.client("kinesis", settings),
            dynamodb=self.dynamodb,  # type: ignore[arg-type]  # a DynamoDB client that can die
            stream=stream,
            checkpoint_table=SERVICE.leases_table,
            processor=self.process,
            replica=name,
            lease_s=LEASE_S,
            watcher=self.watched.extend,
            poll_s=0.05,
            idle_poll_s=0.2,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.reader.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def process(self, records: list[StreamRecord], checkpoint: Checkpoint) -> None:
        tx = Transaction()
        for record in records:
            tx.update(
                PROCESSED,
                {"eventId": record.event.id},
                "ADD #count :one SET #shard = :shard",
                label="processed",
                names={"#count": "count", "#shard": "shard"},
                values={":one": 1, ":shard": checkpoint.shard_id},
            )
        stage_checkpoint(tx, checkpoint)
        commit(self.dynamodb, tx)  # type: ignore[arg-type]

    def kill(self) -> None:
        """Dies: no more writes, no release; its threads end."""
        self.dynamodb.down = True
        self.stop.set()
        self.thread.join(10)

    def held(self) -> list[str]:
        return self.reader.held()


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


_numbers = itertools.count()


def _put(kinesis: Any, stream: str, count: int) -> dict[str, str]:
    """``count`` records over every shard: event id -> the shard it went to."""
    sent: dict[str, str] = {}
    for _ in range(count):
        n = next(_numbers)
        data = _telemetry(f"car_{n}", n)
        response = kinesis.put_record(StreamName=stream, Data=data, PartitionKey=f"car_{n}")
        sent[catalog_id(data)] = response["ShardId"]
    return sent


def catalog_id(data: bytes) -> str:
    from acr.envelope import CloudEvent

    return CloudEvent.from_json(data.decode()).id


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _processed(settings: Settings) -> dict[str, int]:
    rows = aws.client("dynamodb", settings).scan(TableName=PROCESSED, ConsistentRead=True)["Items"]
    return {row["eventId"]["S"]: int(row["count"]["N"]) for row in rows}


@pytest.fixture
def stream(settings: Settings) -> Iterator[str]:
    name = f"acr-test-{uuid.uuid4().hex[:8]}"
    kinesis = aws.client("kinesis", settings)
    kinesis.create_stream(StreamName=name, ShardCount=2)
    _wait(
        lambda: (
            kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
            == "ACTIVE"
        ),
        10,
        "stream",
    )
    yield name


def test_each_shard_is_read_by_one_replica_and_a_dead_ones_shards_move_on_from_the_checkpoint(
    settings: Settings, stream: str
) -> None:
    kinesis = aws.client("kinesis", settings)
    a, b = Replica(settings, stream, "a"), Replica(settings, stream, "b")
    try:
        _wait(lambda: len(a.held()) == 1 and len(b.held()) == 1, 10 * LEASE_S, "one shard each")
        sent = _put(kinesis, stream, 30)
        _wait(lambda: set(_processed(settings)) >= set(sent), 30, "every record processed")
        rows = aws.client("dynamodb", settings).scan(TableName=PROCESSED, ConsistentRead=True)["Items"]
        assert {row["eventId"]["S"]: row["shard"]["S"] for row in rows} == sent
        # each replica watches the shard the other one reads
        _wait(lambda: len(a.watched) + len(b.watched) >= 30, 10, "watchers saw the other shards")
        for replica, other in ((a, b), (b, a)):
            assert {sent[r.event.id] for r in replica.watched if r.event.id in sent} <= set(other.held())

        b_tokens = {lease.key: lease.token for lease in b.reader.leases.all("shard#") if lease.owner == "b"}
        b.kill()
        died_at = time.monotonic()
        more = _put(kinesis, stream, 30)
        _wait(
            lambda: sorted(a.held()) == sorted(a_shard for a_shard in set(sent.values())),
            3 * LEASE_S,
            "a holds both",
        )
        assert time.monotonic() - died_at <= LEASE_S + 2 * LEASE_S / 3 + 1
        _wait(lambda: set(_processed(settings)) >= set(sent) | set(more), 30, "every record processed")
        assert set(Counter(_processed(settings).values())) == {1}  # none processed twice into the state
        leases = a.reader.leases.all("shard#")
        assert {lease.owner for lease in leases} == {"a"}
        assert {lease.key: lease.token - 1 for lease in leases if lease.key in b_tokens} == b_tokens
    finally:
        for replica in (a, b):
            replica.stop.set()
            replica.thread.join(10)


def test_a_stale_owners_checkpoint_is_refused_with_its_whole_batch(settings: Settings) -> None:
    key = shard_lease_key("svc", "shardId-000000000009")
    dynamodb = aws.client("dynamodb", settings)
    stale = LeaseTable(dynamodb, SERVICE.leases_table, "a", LEASE_S).acquire(key)
    later = time.time() + LEASE_S
    current = LeaseTable(dynamodb, SERVICE.leases_table, "b", LEASE_S, clock=lambda: later).acquire(key)
    assert stale is not None and current is not None and current.token == stale.token + 1
    tx = Transaction()
    tx.update(
        PROCESSED,
        {"eventId": "stale-1"},
        "ADD #count :one",
        label="processed",
        names={"#count": "count"},
        values={":one": 1},
    )
    stage_checkpoint(
        tx, Checkpoint(SERVICE.leases_table, "svc", "shardId-000000000009", "1", "a", stale.token)
    )
    with pytest.raises(TransactionCancelled) as refused:
        commit(dynamodb, tx)
    assert refused.value.failed("checkpoint")
    assert "stale-1" not in _processed(settings)


def test_shards_made_by_a_reshard_are_read_after_their_parent(settings: Settings, stream: str) -> None:
    kinesis = aws.client("kinesis", settings)
    a = Replica(settings, stream, "a")
    try:
        _wait(lambda: len(a.held()) == 2, 10 * LEASE_S, "both shards")
        before = _put(kinesis, stream, 10)
        _wait(lambda: set(_processed(settings)) >= set(before), 30, "first records")
        kinesis.update_shard_count(StreamName=stream, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
        after = _put(kinesis, stream, 20)
        assert set(after.values()) - set(before.values()), "the new records went to new shards"
        _wait(lambda: set(_processed(settings)) >= set(before) | set(after), 10 * LEASE_S, "new shards read")
        assert set(Counter(_processed(settings).values())) == {1}
        assert set(a.held()) >= set(after.values())
        finished = [r for r in a.reader.leases.rows(f"shard#{stream}#") if r.get("finished")]
        assert {str(r["leaseKey"]).rsplit("#", 1)[1] for r in finished} >= set(before.values())
    finally:
        a.stop.set()
        a.thread.join(10)
