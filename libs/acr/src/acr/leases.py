"""Leases in DynamoDB: which replica of a service does a piece of work (a Kinesis shard, a singleton job).

One table per service, ``acr-<service>-leases`` (partition key ``leaseKey``). A lease row holds:

- ``leaseKey`` (S): ``shard#<reader>#<shardId>``, ``job#<name>``, ``replica#<replica>`` (a heartbeat), ...
- ``kind`` (S): what comes before the first ``#`` (``shard``, ``job``, ``replica``...), the partition key of
  the ``kind-index``: the leases of one kind are a query of it, never a scan of the table;
- ``owner`` (S): the ``ACR_REPLICA`` name of the replica holding it;
- ``token`` (N): the fencing token, +1 each time the lease changes hands; writes made under a lease are
  conditional on ``owner`` and ``token`` (``LeaseTable.guard``), so a replica that lost the lease while
  paused cannot commit anything afterwards;
- ``expiresAt`` (N): epoch seconds; the holder renews well before (every ``lease_s / 3``), anyone may take
  it after. A released lease keeps its row (a stream reader's checkpoint ``sequence`` lives on it).

Every change is a conditional write, so two replicas never both believe they took the same lease.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.dynamo import from_item, get, is_conditional_failure, to_item
from acr.loops import Loop

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

KEY = "leaseKey"
KIND_INDEX = "kind-index"
_NAMES = {"#owner": "owner", "#token": "token", "#expires": "expiresAt", "#kind": "kind"}


def kind_of(key: str) -> str:
    """A lease key's kind: ``shard`` for ``shard#<reader>#<shardId>``."""
    return key.split("#", 1)[0]


@dataclass(frozen=True)
class Lease:
    """``owner`` holds ``key`` until ``expires_at`` (clock seconds), under fencing token ``token``."""

    key: str
    owner: str
    token: int
    expires_at: float


@dataclass(frozen=True)
class Guard:
    """The condition a write made under a lease carries: the lease is still ``owner``'s with ``token``.
    Pass it to ``Transaction.put``/``update`` (``condition=, names=, values=``) on the lease's own row."""

    condition: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


class LeaseTable:
    """Acquire, renew, release and list the leases of one table, as replica ``owner``."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        owner: str,
        lease_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.owner = owner
        self.lease_s = lease_s
        self.clock = clock
        self.kinds = {"job", "replica", "shard"}
        """The kinds of lease this process knows of (``LeasedKeys`` adds those of its keys): what ``listed``
        lists."""

    def acquire(self, key: str, *, fresh: bool = False) -> Lease | None:
        """Hold ``key`` if it is free, expired or already ours; None while another replica holds it.

        ``fresh``: a lease that is ours is taken again with a new token too (an earlier process of this
        replica held it, or it was given up here), so whatever still writes under the old token is fenced
        off; without it, ours is renewed under its token."""
        now = self.clock()
        row = get(self.dynamodb, self.table, {KEY: key})
        if row is None or "token" not in row:
            return self._take(key, 0, "attribute_not_exists(#token)", {})
        held = _lease(row)
        ours = held.owner == self.owner
        if ours and held.expires_at > now and not fresh:
            return self.renew(held)
        if not ours and held.expires_at > now:
            return None
        condition = "#token = :token AND (#expires <= :now OR #owner = :owner)"
        return self._take(key, held.token, condition, {":token": held.token, ":now": now})

    def _take(self, key: str, token: int, condition: str, values: dict[str, Any]) -> Lease | None:
        """Become the owner with the next fencing token, if the row is still as read (``condition``)."""
        lease = Lease(key, self.owner, token + 1, self.clock() + self.lease_s)
        values = values | {
            ":owner": self.owner,
            ":next": lease.token,
            ":expires": lease.expires_at,
            ":kind": kind_of(key),
        }
        expression = "SET #owner = :owner, #token = :next, #expires = :expires, #kind = :kind"
        return self._update(key, expression, condition, _NAMES, values, lease)

    def renew(self, lease: Lease) -> Lease | None:
        """Extend ``lease`` by ``lease_s`` from now; None when it is no longer ours (someone took it)."""
        renewed = Lease(lease.key, self.owner, lease.token, self.clock() + self.lease_s)
        guard = self.guard(lease)
        return self._update(
            lease.key,
            "SET #expires = :expires",
            guard.condition,
            guard.names | {"#expires": "expiresAt"},
            guard.values | {":expires": renewed.expires_at},
            renewed,
        )

    def release(self, lease: Lease) -> None:
        """Let another replica take ``lease`` at once: it expires now; the row (and its checkpoint) stays."""
        guard = self.guard(lease)
        self._update(
            lease.key,
            "SET #expires = :expires",
            guard.condition,
            guard.names | {"#expires": "expiresAt"},
            guard.values | {":expires": 0},
            lease,
        )

    def all(self, prefix: str) -> list[Lease]:
        """Every lease whose key starts with ``prefix`` (expired ones too), by key."""
        return [_lease(row) for row in self.rows(prefix) if "token" in row]

    def listed(self) -> list[Lease]:
        """Every lease of the kinds this process knows of, by key (the ops view of the table)."""
        return sorted(
            (lease for kind in self.kinds for lease in self.all(f"{kind}#")), key=lambda lease: lease.key
        )

    def rows(self, prefix: str) -> list[dict[str, Any]]:
        """The rows whose key starts with ``prefix`` (which names their kind: ``shard#r#``, ``job#``), with
        what else they hold (a checkpoint), by key: a query of the kind index, whose cost is those rows.
        The index is eventually consistent; no lease is decided on what it shows (every take and renew is a
        conditional write), only how many to try for and which shards are done, a round later at worst."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": KIND_INDEX,
            "KeyConditionExpression": "#kind = :kind AND begins_with(#key, :prefix)",
            "ExpressionAttributeNames": {"#kind": "kind", "#key": KEY},
            "ExpressionAttributeValues": to_item({":kind": kind_of(prefix), ":prefix": prefix}),
        }
        rows: list[dict[str, Any]] = []
        while True:
            page = self.dynamodb.query(**kwargs)
            rows += [from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(rows, key=lambda row: str(row[KEY]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def guard(self, lease: Lease) -> Guard:
        """``owner = me AND token = t``: the condition every write made under ``lease`` carries."""
        return guard(lease)

    def _update(
        self,
        key: str,
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        lease: Lease,
    ) -> Lease | None:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=to_item({KEY: key}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return lease


def guard(lease: Lease) -> Guard:
    """``owner = me AND token = t``: the condition every write made under ``lease`` carries."""
    return Guard(
        "#owner = :leaseOwner AND #token = :leaseToken",
        {"#owner": "owner", "#token": "token"},
        {":leaseOwner": lease.owner, ":leaseToken": lease.token},
    )


def _lease(row: dict[str, Any]) -> Lease:
    return Lease(str(row[KEY]), str(row.get("owner", "")), int(row["token"]), float(row["expiresAt"]))


class LeasedKeys:
    """Keeps a fair share of ``keys()`` held by this replica.

    Each round (every ``lease_s / 3``): renew this replica's heartbeat (``replica#<owner>``, a lease like
    the others) and count the live replicas; the ``n`` keys are split so that, by replica name, the first
    ``n % live`` replicas hold ``n // live + 1`` and the others ``n // live``; renew what this replica holds,
    release what it holds over its share (so a new replica gets some) and take free or expired keys up to
    it, and those its name holds but it does not (a restarted process of this replica takes them back at
    once), each with a new token. ``on_gained(lease)``/``on_lost(key)`` are called from the loop's thread.
    A lease that cannot be renewed is given up one round before it expires, so a stalled replica stops
    before another takes over.
    """

    def __init__(
        self,
        table: LeaseTable,
        keys: Callable[[], list[str]],
        on_gained: Callable[[Lease], None],
        on_lost: Callable[[str], None],
        every_s: float | None = None,
    ) -> None:
        self.table = table
        self._keys = keys
        self._on_gained = on_gained
        self._on_lost = on_lost
        self.every_s = table.lease_s / 3 if every_s is None else every_s
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()

    @property
    def heartbeat(self) -> str:
        return f"replica#{self.table.owner}"

    def held(self) -> dict[str, Lease]:
        """The leases this replica holds now, by key."""
        with self._lock:
            return dict(self._held)

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop``; then every lease held (and the heartbeat) is released."""
        while not stop.is_set():
            self.tick()
            stop.wait(self.every_s)
        self.release_all()

    def tick(self) -> None:
        """One round: heartbeat, renew, release extras, take up to the share. When DynamoDB fails, every
        lease that would expire before the next round is given up here."""
        try:
            self._round()
        except Exception:
            log.exception("lease round on %s failed", self.table.table)
            self._drop_expiring()

    def _round(self) -> None:
        self.table.acquire(self.heartbeat)
        keys = sorted(set(self._keys()))
        kinds = {kind_of(key) for key in keys}
        self.table.kinds |= kinds
        leases = {lease.key: lease for kind in sorted(kinds) for lease in self.table.all(f"{kind}#")}
        now = self.table.clock()
        live = sorted(lease.owner for lease in self.table.all("replica#") if lease.expires_at > now)
        share = _share(len(keys), live, self.table.owner)
        for key, lease in sorted(self.held().items()):
            renewed = self.table.renew(lease) if key in keys else None
            if renewed is None:
                self._lose(key)
                if key not in keys:
                    self.table.release(lease)
            else:
                self._set(key, renewed)
        for key in sorted(self.held())[share:]:
            extra = self.held()[key]
            self._lose(key)  # stopped here before another replica can take it
            self.table.release(extra)
        for key in _rotated(keys, self.table.owner):
            if len(self.held()) >= share:
                break
            current = leases.get(key)
            taken = current is not None and current.expires_at > now and current.owner != self.table.owner
            if key in self.held() or taken:
                continue
            if (gained := self.table.acquire(key, fresh=True)) is not None:
                self._set(key, gained)
                self._on_gained(gained)

    def release_all(self) -> None:
        """Give every held lease back (a clean stop); a replica that dies skips this, its leases expire."""
        for key, lease in sorted(self.held().items()):
            self._lose(key)
            try:
                self.table.release(lease)
            except Exception:
                log.exception("cannot release %s", key)
        try:
            if (heartbeat := self.table.acquire(self.heartbeat)) is not None:
                self.table.release(heartbeat)
        except Exception:
            log.exception("cannot release %s", self.heartbeat)

    def _drop_expiring(self) -> None:
        """After a failed round: give up (locally) every lease that would expire before the next one."""
        deadline = self.table.clock() + self.every_s
        for key, lease in sorted(self.held().items()):
            if lease.expires_at <= deadline:
                self._lose(key)

    def _set(self, key: str, lease: Lease) -> None:
        with self._lock:
            self._held[key] = lease

    def _lose(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)
        self._on_lost(key)


def _share(keys: int, live: list[str], owner: str) -> int:
    """How many of ``keys`` keys ``owner`` holds when ``live`` replicas split them (``owner`` counts)."""
    replicas = sorted(set(live) | {owner})
    base, extra = divmod(keys, len(replicas))
    return base + (1 if replicas.index(owner) < extra else 0)


def _rotated(keys: list[str], owner: str) -> list[str]:
    """``keys`` starting at a place of ``owner``'s own, so replicas taking keys at once rarely collide."""
    if not keys:
        return keys
    start = zlib.crc32(owner.encode()) % len(keys)
    return keys[start:] + keys[:start]


class Singleton:
    """Runs ``job`` (a loop) only while this replica holds lease ``job#<name>``: tried every ``lease_s / 3``;
    the job is told to stop (its own stop event) and joined as soon as the lease is lost, or a round before
    it would expire unrenewed, so two replicas never run it at the same moment."""

    def __init__(self, table: LeaseTable, name: str, job: Loop, every_s: float | None = None) -> None:
        self.table = table
        self.key = f"job#{name}"
        self._job = job
        self.every_s = table.lease_s / 3 if every_s is None else every_s
        self.lease: Lease | None = None
        self._stop_job = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(self.every_s)
        self.stop()

    def stop(self) -> None:
        """Stop the job (joined) and release the lease, so another replica takes it at once."""
        self._stop()
        if self.lease is not None:
            try:
                self.table.release(self.lease)
            except Exception:
                log.exception("singleton %s: cannot release its lease", self.key)
            self.lease = None

    def tick(self) -> None:
        """Renew (or try to take) the lease; start the job when it was gained, stop it when lost. When
        DynamoDB fails, the job stops if its lease would expire before the next round."""
        try:
            self._round()
        except Exception:
            log.exception("singleton %s: lease round failed", self.key)
            if self.lease is not None and self.lease.expires_at <= self.table.clock() + self.every_s:
                self._stop()
                self.lease = None

    def _round(self) -> None:
        lease = self.table.renew(self.lease) if self.lease else self.table.acquire(self.key, fresh=True)
        if lease is None:
            self._stop()
            self.lease = None
            return
        self.lease = lease
        if not self.running:
            log.info("singleton %s runs here (token %d)", self.key, lease.token)
            self._stop_job = threading.Event()
            self._thread = threading.Thread(
                target=self._job, args=(self._stop_job,), name=self.key, daemon=True
            )
            self._thread.start()

    def _stop(self) -> None:
        if self._thread is not None:
            log.info("singleton %s stops here", self.key)
            self._stop_job.set()
            self._thread.join()
            self._thread = None


def singleton(table: LeaseTable, name: str, job: Loop) -> Loop:
    """A loop that runs ``job`` only while this replica holds the lease ``job#<name>``."""
    return Singleton(table, name, job).run
