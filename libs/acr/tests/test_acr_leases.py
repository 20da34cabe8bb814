"""Leases on DynamoDB (in-process moto: real conditional writes) with a fake clock: acquire, renew, steal
after expiry, release, fencing; fair shares of keys between replicas; singleton jobs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from acr_exactly_once_fakes import Clock, Dynamo, in_process_dynamodb

from acr.dynamo import Transaction, TransactionCancelled, commit
from acr.leases import Lease, LeasedKeys, LeaseTable, Singleton
from acr.service import Runtime
from acr.settings import Settings
from acr.topology import ServiceTopology, discover
from acr_testkit.aws import in_process_messaging

LEASES = ServiceTopology("svc", leases=True)
TABLE = LEASES.leases_table
LEASE_S = 9.0


@pytest.fixture
def dynamodb() -> Iterator[Dynamo]:
    with in_process_dynamodb(LEASES.all_tables()) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000.0)


def table(dynamodb: Dynamo, clock: Clock, owner: str) -> LeaseTable:
    return LeaseTable(dynamodb, TABLE, owner, LEASE_S, clock=clock.time)


def test_the_lease_table_is_declared_by_the_topology() -> None:
    assert TABLE == "acr-svc-leases"
    assert [(t.name, t.partition_key) for t in LEASES.all_tables()] == [(TABLE, "leaseKey")]
    assert ServiceTopology("svc").all_tables() == []


def test_a_free_key_is_acquired_once_and_only_its_owner_renews_it(dynamodb: Dynamo, clock: Clock) -> None:
    a, b = table(dynamodb, clock, "a"), table(dynamodb, clock, "b")
    lease = a.acquire("job#x")
    assert lease == Lease("job#x", "a", 1, 1_009.0)
    assert b.acquire("job#x") is None
    clock.advance(5)
    assert a.acquire("job#x") == Lease("job#x", "a", 1, 1_014.0)  # already ours: renewed, same token
    assert a.renew(lease) == Lease("job#x", "a", 1, 1_014.0)
    assert b.renew(Lease("job#x", "b", 1, 0)) is None
    assert dynamodb.row(TABLE, leaseKey="job#x") == {
        "leaseKey": "job#x",
        "kind": "job",
        "owner": "a",
        "token": 1,
        "expiresAt": 1_014,
    }


def test_an_expired_lease_is_stolen_with_the_next_token_and_its_old_owner_cannot_renew_it(
    dynamodb: Dynamo, clock: Clock
) -> None:
    a, b = table(dynamodb, clock, "a"), table(dynamodb, clock, "b")
    old = a.acquire("job#x")
    assert old is not None
    clock.advance(LEASE_S - 0.5)
    assert b.acquire("job#x") is None  # not expired yet
    clock.advance(0.5)
    stolen = b.acquire("job#x")
    assert stolen == Lease("job#x", "b", 2, 1_018.0)
    assert a.renew(old) is None
    assert a.acquire("job#x") is None
    assert [lease.owner for lease in a.all("job#")] == ["b"]


def test_an_owner_that_comes_back_after_its_lease_expired_gets_a_new_token(
    dynamodb: Dynamo, clock: Clock
) -> None:
    a = table(dynamodb, clock, "a")
    assert a.acquire("job#x") is not None
    clock.advance(LEASE_S)
    again = a.acquire("job#x")
    assert again is not None and again.token == 2


def test_a_released_lease_is_taken_at_once_and_keeps_the_rest_of_its_row(
    dynamodb: Dynamo, clock: Clock
) -> None:
    a, b = table(dynamodb, clock, "a"), table(dynamodb, clock, "b")
    lease = a.acquire("shard#r#s1")
    assert lease is not None
    dynamodb.update_item(
        TableName=TABLE,
        Key={"leaseKey": {"S": "shard#r#s1"}},
        UpdateExpression="SET #sequence = :s",
        ExpressionAttributeNames={"#sequence": "sequence"},
        ExpressionAttributeValues={":s": {"S": "42"}},
    )
    a.release(lease)
    taken = b.acquire("shard#r#s1")
    assert taken is not None and taken.token == 2
    row = dynamodb.row(TABLE, leaseKey="shard#r#s1")
    assert row is not None and row["sequence"] == "42" and row["owner"] == "b"
    a.release(lease)  # a stale release changes nothing
    assert b.renew(taken) is not None


def test_a_write_guarded_by_a_lost_lease_is_refused(dynamodb: Dynamo, clock: Clock) -> None:
    a, b = table(dynamodb, clock, "a"), table(dynamodb, clock, "b")
    lease = a.acquire("shard#r#s1")
    assert lease is not None

    def checkpoint(lease: Lease, sequence: str) -> None:
        guard = a.guard(lease)
        tx = Transaction()
        tx.update(
            TABLE,
            {"leaseKey": lease.key},
            "SET #sequence = :sequence",
            label="checkpoint",
            condition=guard.condition,
            names=guard.names | {"#sequence": "sequence"},
            values=guard.values | {":sequence": sequence},
        )
        commit(dynamodb, tx)

    checkpoint(lease, "1")
    clock.advance(LEASE_S)
    assert b.acquire("shard#r#s1") is not None
    with pytest.raises(TransactionCancelled) as refused:
        checkpoint(lease, "2")
    assert refused.value.failed("checkpoint")
    row = dynamodb.row(TABLE, leaseKey="shard#r#s1")
    assert row is not None and row["sequence"] == "1"


class Replica:
    """One replica's ``LeasedKeys`` and what its callbacks said."""

    def __init__(self, dynamodb: Any, clock: Clock, name: str, keys: list[str]) -> None:
        self.keys = keys
        self.events: list[str] = []
        self.leased = LeasedKeys(
            table(dynamodb, clock, name),
            lambda: self.keys,
            on_gained=lambda lease: self.events.append(f"+{lease.key}"),
            on_lost=lambda key: self.events.append(f"-{key}"),
        )

    def held(self) -> list[str]:
        return sorted(self.leased.held())


KEYS = [f"shard#r#s{i}" for i in range(6)]


def settle(clock: Clock, *replicas: Replica, rounds: int = 4) -> None:
    for _ in range(rounds):
        for replica in replicas:
            replica.leased.tick()
        clock.advance(LEASE_S / 3)


def assert_split(replicas: list[Replica], sizes: list[int]) -> None:
    held = [replica.held() for replica in replicas]
    assert sorted(len(h) for h in held) == sorted(sizes)
    assert sorted(key for h in held for key in h) == KEYS  # every key held, by one replica only


def test_keys_are_shared_fairly_between_two_then_three_replicas(dynamodb: Dynamo, clock: Clock) -> None:
    a = Replica(dynamodb, clock, "a", KEYS)
    settle(clock, a, rounds=1)
    assert a.held() == KEYS
    b = Replica(dynamodb, clock, "b", KEYS)
    settle(clock, a, b)
    assert_split([a, b], [3, 3])
    c = Replica(dynamodb, clock, "c", KEYS)
    settle(clock, a, b, c)
    assert_split([a, b, c], [2, 2, 2])
    assert sorted(a.events[:6]) == [f"+{key}" for key in KEYS]
    assert all(event.startswith("-") for event in a.events[6:])  # a only gave keys away


def test_a_dead_replicas_keys_move_within_a_lease_period(dynamodb: Dynamo, clock: Clock) -> None:
    a, b = Replica(dynamodb, clock, "a", KEYS), Replica(dynamodb, clock, "b", KEYS)
    settle(clock, a, b)
    assert_split([a, b], [3, 3])
    a_keys = a.held()
    died_at = clock.now  # a stops renewing (no release): b must take its keys within one lease period
    while sorted(b.held()) != KEYS:
        assert clock.now - died_at <= LEASE_S + LEASE_S / 3
        settle(clock, b, rounds=1)
    assert sorted(e for e in b.events if e.startswith("+") and e[1:] in a_keys) == [f"+{k}" for k in a_keys]
    stolen = table(dynamodb, clock, "b").all("shard#")
    assert {lease.token for lease in stolen if lease.key in a_keys} == {2}


def test_new_keys_are_taken_and_keys_that_disappear_are_given_up(dynamodb: Dynamo, clock: Clock) -> None:
    a = Replica(dynamodb, clock, "a", KEYS[:2])
    settle(clock, a, rounds=1)
    a.keys = KEYS[1:3]
    settle(clock, a, rounds=1)
    assert a.held() == KEYS[1:3]
    assert sorted(a.events[:2]) == [f"+{KEYS[0]}", f"+{KEYS[1]}"]
    assert a.events[2:] == [f"-{KEYS[0]}", f"+{KEYS[2]}"]
    row = dynamodb.row(TABLE, leaseKey=KEYS[0])
    assert row is not None and row["expiresAt"] == 0  # released for whoever lists it again


def test_a_replica_that_cannot_renew_gives_its_keys_up_before_they_expire(
    dynamodb: Dynamo, clock: Clock
) -> None:
    broken = Broken(dynamodb)
    a = Replica(broken, clock, "a", KEYS[:2])
    settle(clock, a, rounds=1)
    renewed_at = clock.now - LEASE_S / 3
    broken.down = True
    while a.held():
        settle(clock, a, rounds=1)
    assert clock.now <= renewed_at + LEASE_S  # given up before the lease expired in the table


def test_a_clean_stop_releases_every_key_and_the_heartbeat(dynamodb: Dynamo, clock: Clock) -> None:
    a = Replica(dynamodb, clock, "a", KEYS[:2])
    settle(clock, a, rounds=1)
    a.leased.release_all()
    assert a.held() == []
    listed = table(dynamodb, clock, "a").listed()
    assert [lease.key for lease in listed] == ["replica#a", *KEYS[:2]]  # a query of each kind
    assert all(lease.expires_at == 0 for lease in listed)


class Broken:
    """A DynamoDB client that fails every call once ``down`` (a partitioned or frozen replica)."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb
        self.down = False

    def __getattr__(self, name: str) -> Any:
        if self.down:
            raise ConnectionError("DynamoDB unreachable")
        return getattr(self._dynamodb, name)


class Job:
    """A singleton job: records in ``running`` which replicas run it right now."""

    def __init__(self, running: list[str], name: str) -> None:
        self.running, self.name = running, name

    def __call__(self, stop: threading.Event) -> None:
        self.running.append(self.name)
        stop.wait()
        self.running.remove(self.name)


def started(singleton: Singleton, running: list[str], name: str) -> bool:
    """Once ``singleton`` started its job thread, wait until the job says it runs."""
    for _ in range(500):
        if not singleton.running or name in running:
            break
        threading.Event().wait(0.01)
    return name in running


def test_a_singleton_runs_on_one_replica_and_moves_when_that_one_dies(dynamodb: Dynamo, clock: Clock) -> None:
    running: list[str] = []
    broken = Broken(dynamodb)
    a = Singleton(table(broken, clock, "a"), "watchdog", Job(running, "a"))
    b = Singleton(table(dynamodb, clock, "b"), "watchdog", Job(running, "b"))
    for _ in range(6):
        a.tick()
        b.tick()
        assert started(a, running, "a") and running == ["a"] and not b.running
        clock.advance(LEASE_S / 3)
    broken.down = True  # a can no longer renew: it stops its job, then b takes the lease
    died_at = clock.now
    while not b.running:
        assert clock.now - died_at <= LEASE_S
        a.tick()
        b.tick()
        assert len(running) <= 1
        clock.advance(LEASE_S / 3)
    assert started(b, running, "b") and running == ["b"] and b.lease is not None and b.lease.token == 2
    broken.down = False  # a is back: b keeps the job
    for _ in range(4):
        a.tick()
        b.tick()
        assert running == ["b"]
        clock.advance(LEASE_S / 3)
    b.stop()
    assert running == []


def test_a_singleton_stops_its_job_and_releases_its_lease_when_stopped(
    dynamodb: Dynamo, clock: Clock
) -> None:
    running: list[str] = []
    a = Singleton(table(dynamodb, clock, "a"), "purge", Job(running, "a"), every_s=0.01)
    b = Singleton(table(dynamodb, clock, "b"), "purge", Job(running, "b"))
    stop = threading.Event()
    thread = threading.Thread(target=a.run, args=(stop,))
    thread.start()
    try:
        for _ in range(500):
            if running:
                break
            stop.wait(0.01)
        assert running == ["a"]
    finally:
        stop.set()
        thread.join(5)
    assert running == []
    b.tick()  # released: b takes it at once
    assert started(b, running, "b") and running == ["b"]
    b.stop()
    assert running == []


def test_a_runtimes_singleton_runs_on_one_replica_and_moves_when_it_stops(dynamodb: Dynamo) -> None:
    """The kernel's wiring, in real time (lease 0.6 s): two replicas' runtimes register the same job."""
    running: list[str] = []
    runtimes = []
    for name in ("a", "b"):
        runtime = Runtime("svc", Settings(replica=name), asyncio.new_event_loop())
        runtime.leases = LeaseTable(dynamodb, TABLE, name, 0.6)
        runtime.singleton("sweeper", Job(running, name))
        runtime.loops.start()
        runtimes.append(runtime)
    try:
        for _ in range(20):  # a second and more: never two at once
            assert len(running) <= 1
            threading.Event().wait(0.05)
        first = running[0]
        holder = runtimes[["a", "b"].index(first)]
        holder.loops.stop()
        assert _eventually(lambda: running == [{"a": "b", "b": "a"}[first]], 2.0)
    finally:
        for runtime in runtimes:
            runtime.loops.stop()
    assert running == []


def test_without_a_lease_table_a_runtimes_singleton_is_a_plain_loop() -> None:
    running: list[str] = []
    runtime = Runtime("svc", Settings(), asyncio.new_event_loop())
    runtime.singleton("sweeper", Job(running, "only"))
    runtime.loops.start()
    try:
        assert _eventually(lambda: running == ["only"], 2.0)
    finally:
        runtime.loops.stop()


def test_the_ops_stats_list_the_services_leases() -> None:
    ride_manager = next(t for t in discover() if t.service == "ride-manager")
    with in_process_messaging(ride_manager, Settings(aws_endpoint_url="", replica="rm-1")) as messaging:
        assert messaging.leases is not None and messaging.leases.table == "acr-ride-manager-leases"
        lease = messaging.leases.acquire("job#watchdog")
        assert lease is not None
        assert messaging.stats()["leases"] == [
            {"key": "job#watchdog", "owner": "rm-1", "token": 1, "expiresAt": lease.expires_at}
        ]


def _eventually(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        threading.Event().wait(0.02)
    return condition()


def test_a_restarted_replica_takes_its_keys_back_at_once_with_new_tokens(
    dynamodb: Dynamo, clock: Clock
) -> None:
    before = Replica(dynamodb, clock, "a", KEYS[:2])
    settle(clock, before, rounds=1)
    tokens = {key: lease.token for key, lease in before.leased.held().items()}
    restarted = Replica(dynamodb, clock, "a", KEYS[:2])  # same replica name, a new process: nothing held
    settle(clock, restarted, rounds=1)  # well before the old leases expire
    assert {key: lease.token for key, lease in restarted.leased.held().items()} == {
        key: token + 1 for key, token in tokens.items()
    }
    assert before.leased.table.renew(before.leased.held()[KEYS[0]]) is None  # the old process is fenced off


def test_a_lease_taken_fresh_while_ours_gets_a_new_token(dynamodb: Dynamo, clock: Clock) -> None:
    a = table(dynamodb, clock, "a")
    first = a.acquire("job#x")
    again = a.acquire("job#x", fresh=True)
    assert first is not None and again is not None and again.token == first.token + 1
    assert table(dynamodb, clock, "b").acquire("job#x", fresh=True) is None  # fresh never steals
