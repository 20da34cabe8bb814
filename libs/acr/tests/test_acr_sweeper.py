"""The sweeper: where DynamoDB TTL never runs, expired markers, sent outbox rows (and any table declared with
a TTL attribute) are deleted in bounded runs, by one replica; on AWS it does not run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from acr_exactly_once_fakes import OUTBOX, SVC, Clock, Dynamo, ScriptedChannel, Sqs, in_process_dynamodb
from moto import mock_aws

from acr import dynamo, relay, sweeper
from acr.catalog.fleet import NoCarAvailable
from acr.dynamo import DynamoUnitOfWork, to_item
from acr.loops import Loops
from acr.metrics import Counters
from acr.runtime import Messaging
from acr.settings import Settings
from acr.sweeper import Expiring, Sweeper, expiring_tables
from acr.topology import ServiceTopology, discover
from acr.topology.apply import Clients, apply
from acr_testkit.aws import client

INBOX = SVC.inbox_table


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000_000.0)
    for module in (relay, dynamo, sweeper):
        monkeypatch.setattr(module, "time", clock)
    return clock


@pytest.fixture
def dynamodb() -> Iterator[Dynamo]:
    with in_process_dynamodb() as client_:
        yield client_


def _marker(dynamodb: Dynamo, key: str, expires_at: float) -> None:
    dynamodb.put_item(TableName=INBOX, Item=to_item({"dedupKey": key, "expiresAt": int(expires_at)}))


def test_the_tables_swept_are_those_declared_with_a_ttl_attribute() -> None:
    assert expiring_tables(SVC) == [
        Expiring(OUTBOX, ("eventId",), "expiresAt"),
        Expiring(INBOX, ("dedupKey",), "expiresAt"),
    ]
    ride_manager = next(t for t in discover() if t.service == "ride-manager")
    swept = {e.table: e.ttl_attribute for e in expiring_tables(ride_manager)}
    assert swept["acr-ride-manager-quotes"] == "purgeAt"
    assert swept["acr-ride-manager-idempotency"] == "expiresAt"
    assert "acr-ride-manager-leases" not in swept  # a lease's token must outlive its expiry (fencing)


def test_only_expired_items_are_deleted_and_counted(dynamodb: Dynamo, clock: Clock) -> None:
    uow = DynamoUnitOfWork(dynamodb, OUTBOX)
    uow.record(NoCarAvailable(ride_id="r1", reason="x"), subject="r1")
    uow.record(NoCarAvailable(ride_id="r2", reason="x"), subject="r2")
    uow.commit()
    sender = relay.Relay(
        dynamodb=dynamodb,
        sqs=Sqs(),
        outbox_table=OUTBOX,
        dead_letter_queue_url="dlq",
        channels={"bus": ScriptedChannel([[None, "ThrottlingException"]])},
        counters=Counters(),
    )
    sender.drain_once()  # one row sent (it expires after the retention), one still pending (it never does)
    _marker(dynamodb, "old", clock.now - 1)
    _marker(dynamodb, "live", clock.now + 3600)
    counters = Counters()
    sweep = Sweeper(dynamodb, expiring_tables(SVC), counters=counters)

    assert sweep.sweep_once() == 1  # the marker past its window
    clock.advance(relay.SENT_RETENTION_S + 1)
    assert sweep.sweep_once() == 1  # the sent row, now past its retention

    assert [r["dedupKey"] for r in dynamodb.rows(INBOX)] == ["live"]
    (pending,) = dynamodb.rows(OUTBOX)
    assert pending["pending"] == "P" and "expiresAt" not in pending
    assert counters.get("swept") == 2
    assert counters.snapshot()["swept"] == 2


def test_a_run_reads_a_bounded_number_of_pages_and_the_next_goes_on_from_there(
    dynamodb: Dynamo, clock: Clock
) -> None:
    for i in range(7):
        _marker(dynamodb, f"m{i}", clock.now - 1)
    counting = _Counting(dynamodb)
    sweep = Sweeper(counting, [Expiring(INBOX, ("dedupKey",), "expiresAt")], page_items=2, pages_per_run=2)
    swept, scans = [], []
    for _ in range(3):
        before = counting.scans
        swept.append(sweep.sweep_once())
        scans.append(counting.scans - before)
    assert swept == [4, 3, 0]
    assert scans == [2, 2, 1]  # never more than two pages a run; the third run reads the empty table once
    assert dynamodb.rows(INBOX) == []


def test_an_item_written_again_after_the_scan_is_not_deleted(dynamodb: Dynamo, clock: Clock) -> None:
    _marker(dynamodb, "reused", clock.now - 1)

    def renew() -> None:  # a new commit overwrites the expired marker with a new window
        _marker(dynamodb, "reused", clock.now + 3600)

    sweep = Sweeper(_AfterScan(dynamodb, renew), [Expiring(INBOX, ("dedupKey",), "expiresAt")])
    assert sweep.sweep_once() == 0
    assert [r["dedupKey"] for r in dynamodb.rows(INBOX)] == ["reused"]


def test_the_sweeper_runs_on_one_replica_and_not_at_all_on_aws() -> None:
    """Two replicas of a service with a lease table on the emulator: one holds ``job#sweeper`` and the
    expired marker goes; on AWS (no endpoint) no replica sweeps: DynamoDB TTL does it."""
    reward = next(t for t in discover() if t.service == "reward")
    with mock_aws():
        apply(discover(), Clients(client))
        emulator = Settings(lease_s=0.6, sweep_s=0.05)
        replicas = [_started(reward, emulator.model_copy(update={"replica": n})) for n in ("a", "b")]
        ddb = replicas[0].dynamodb
        try:
            ddb.put_item(
                TableName=reward.inbox_table,
                Item=to_item({"dedupKey": "old", "expiresAt": int(time.time()) - 1}),
            )
            assert _eventually(lambda: ddb.scan(TableName=reward.inbox_table)["Items"] == [], 5.0)
            owners = {row["owner"] for m in replicas for row in m.lease_rows() if row["key"] == "job#sweeper"}
            assert len(owners) == 1 and owners <= {"a", "b"}
        finally:
            for m in replicas:
                m._loops.stop()  # noqa: SLF001 - the loops this test started

        on_aws = _started(reward, Settings(aws_endpoint_url="", replica="c", sweep_s=0.05))
        try:
            ddb.put_item(
                TableName=reward.inbox_table,
                Item=to_item({"dedupKey": "old", "expiresAt": int(time.time()) - 1}),
            )
            threading.Event().wait(0.5)
            assert len(ddb.scan(TableName=reward.inbox_table)["Items"]) == 1
            assert not [row for row in on_aws.lease_rows() if row["owner"] == "c"]
        finally:
            on_aws._loops.stop()  # noqa: SLF001


# --- helpers ---------------------------------------------------------------------------------------------
def _started(topology: ServiceTopology, settings: Settings) -> Messaging:
    messaging = Messaging(topology, settings, Loops(), make_client=client)
    messaging._loops.start()  # noqa: SLF001 - only the sweeper and the relay run: nothing is consumed
    return messaging


def _eventually(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return True
        threading.Event().wait(0.02)
    return check()


class _Counting:
    """A DynamoDB client that counts its Scan calls."""

    def __init__(self, inner: Dynamo) -> None:
        self._inner = inner
        self.scans = 0

    def scan(self, **kwargs: object) -> object:
        self.scans += 1
        return self._inner.scan(**kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


class _AfterScan:
    """A DynamoDB client that runs ``between`` after each Scan, before anything is deleted."""

    def __init__(self, inner: Dynamo, between: Callable[[], None]) -> None:
        self._inner, self._between = inner, between

    def scan(self, **kwargs: object) -> object:
        page = self._inner.scan(**kwargs)
        self._between()
        return page

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)
