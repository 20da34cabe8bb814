"""Reading a Kinesis stream across replicas: each shard is leased (``acr.leases``) to one live replica, which
reads it in a thread of its own and keeps its checkpoint on the lease row, written only under the lease.

The shard list is read again every lease round (``lease_s / 3``), so shards created by a reshard are
picked up while running; a child shard is leased only once its parents were read to their end (their rows
say ``finished``). Open shards this replica does not hold can be *watched*: read from the newest record,
without lease or checkpoint, for an in-memory view of the whole stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr import tracing
from acr.dynamo import Transaction, get, is_conditional_failure, to_item
from acr.leases import Lease, LeasedKeys, LeaseTable, guard
from acr.stream import Checkpoint, Processor, ShardLost, StreamRecord, decode_record, shard_lease_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient

log = logging.getLogger(__name__)

Watcher = Callable[[list[StreamRecord]], object]
"""Given the records of every open shard this replica does not hold (from the newest on, no checkpoint)."""


def _guard(checkpoint: Checkpoint) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The checkpoint's write: the sequence, only while the lease is still its owner's with its token."""
    lease_guard = guard(Lease(checkpoint.key["leaseKey"], checkpoint.owner, checkpoint.token, 0.0))
    names = lease_guard.names | {"#sequence": "sequence"}
    return lease_guard.condition, names, lease_guard.values | {":sequence": checkpoint.sequence}


def stage_checkpoint(tx: Transaction, checkpoint: Checkpoint) -> None:
    """Commit the checkpoint with the batch's other writes; the transaction fails (label ``checkpoint``)
    when the shard's lease changed hands."""
    condition, names, values = _guard(checkpoint)
    tx.update(
        checkpoint.table,
        checkpoint.key,
        "SET #sequence = :sequence",
        label="checkpoint",
        condition=condition,
        names=names,
        values=values,
    )


def save_checkpoint(dynamodb: DynamoDBClient, checkpoint: Checkpoint) -> None:
    """Store the checkpoint on its own; ``ShardLost`` when the shard's lease changed hands."""
    condition, names, values = _guard(checkpoint)
    try:
        dynamodb.update_item(
            TableName=checkpoint.table,
            Key=to_item(checkpoint.key),
            UpdateExpression="SET #sequence = :sequence",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )
    except ClientError as exc:
        if is_conditional_failure(exc):
            raise ShardLost(checkpoint.shard_id) from exc
        raise


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parents: tuple[str, ...]
    closed: bool


@dataclass
class _Worker:
    stop: threading.Event
    thread: threading.Thread


class KinesisReader:
    """Reads the shards of a stream this replica leases, for one named reader."""

    def __init__(
        self,
        *,
        reader: str,
        kinesis: KinesisClient,
        dynamodb: DynamoDBClient,
        stream: str,
        checkpoint_table: str,
        processor: Processor,
        replica: str,
        lease_s: float = 10.0,
        stream_arn: str | None = None,
        watcher: Watcher | None = None,
        poll_s: float = 0.5,
        idle_poll_s: float = 2.0,
        batch: int = 500,
    ) -> None:
        self.reader = reader
        self._kinesis = kinesis
        self._dynamodb = dynamodb
        self._stream = stream
        self._by_arn: dict[str, Any] = {"StreamARN": stream_arn} if stream_arn else {}
        """A stream of another account is named by its ARN, in every call (AWS finds it so)."""
        self._names: dict[str, Any] = self._by_arn or {"StreamName": stream}
        self._table = checkpoint_table
        self._processor = processor
        self._watcher = watcher
        self._poll_s = poll_s
        self._idle_poll_s = idle_poll_s
        self._batch = batch
        self.leases = LeaseTable(dynamodb, checkpoint_table, replica, lease_s)
        self._leased = LeasedKeys(self.leases, self._leasable, self._gained, self._lost)
        self._listed: list[Shard] = []
        self._readers: dict[str, _Worker] = {}
        self._watchers: dict[str, _Worker] = {}

    def shards(self) -> list[Shard]:
        """Every shard of the stream (open and closed ones still in retention)."""
        shards: list[Shard] = []
        kwargs: dict[str, Any] = dict(self._names)
        while True:
            page = self._kinesis.list_shards(**kwargs)
            for s in page["Shards"]:
                parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
                closed = "EndingSequenceNumber" in s["SequenceNumberRange"]
                shards.append(Shard(s["ShardId"], parents, closed))
            if not page.get("NextToken"):
                return shards
            kwargs = {"NextToken": page["NextToken"]}

    def held(self) -> list[str]:
        """The shards this replica reads now."""
        return sorted(key.rsplit("#", 1)[1] for key in self._leased.held())

    def watched(self) -> list[str]:
        """The shards this replica watches now."""
        return sorted(self._watchers)

    def run(self, stop: threading.Event) -> None:
        """Lease rounds until ``stop``: hold a fair share of the shards, read each held one in a thread,
        watch the others; on ``stop`` every reading thread ends and every lease is released."""
        try:
            while not stop.is_set():
                self._leased.tick()
                self._watch()
                stop.wait(self._leased.every_s)
        finally:
            self._leased.release_all()
            for shard_id in list(self._watchers):
                self._end(self._watchers, shard_id)

    def checkpoint(self, shard_id: str) -> str | None:
        row = get(self._dynamodb, self._table, {"leaseKey": shard_lease_key(self.reader, shard_id)})
        return str(row["sequence"]) if row and "sequence" in row else None

    def _leasable(self) -> list[str]:
        """The lease keys of the shards to read: not finished, and every parent (still listed) finished."""
        try:
            self._listed = self.shards()
        except Exception:
            log.exception("reader %s cannot list the shards of %s", self.reader, self._stream)
        prefix = shard_lease_key(self.reader, "")
        finished = {str(r["leaseKey"]) for r in self.leases.rows(prefix) if r.get("finished")}
        listed = {shard.shard_id for shard in self._listed}
        return [
            shard_lease_key(self.reader, shard.shard_id)
            for shard in self._listed
            if shard_lease_key(self.reader, shard.shard_id) not in finished
            and all(p not in listed or shard_lease_key(self.reader, p) in finished for p in shard.parents)
        ]

    def _gained(self, lease: Lease) -> None:
        shard_id = lease.key.rsplit("#", 1)[1]
        self._end(self._watchers, shard_id)
        self._end(self._readers, shard_id)
        log.info("reader %s reads %s (token %d)", self.reader, shard_id, lease.token)
        self._start(self._readers, shard_id, partial(self.run_shard, shard_id, lease), "read")

    def _lost(self, key: str) -> None:
        shard_id = key.rsplit("#", 1)[1]
        if shard_id in self._readers:
            log.info("reader %s stops reading %s", self.reader, shard_id)
        self._end(self._readers, shard_id)

    def _watch(self) -> None:
        """Watch every open shard not held here (and only those)."""
        if self._watcher is None:
            return
        held = set(self.held())
        wanted = {s.shard_id for s in self._listed if not s.closed and s.shard_id not in held}
        for shard_id in set(self._watchers) - wanted:
            self._end(self._watchers, shard_id)
        for shard_id in sorted(wanted - set(self._watchers)):
            self._start(self._watchers, shard_id, partial(self.watch_shard, shard_id), "watch")

    def _start(
        self, workers: dict[str, _Worker], shard_id: str, work: Callable[[threading.Event], None], kind: str
    ) -> None:
        stop = threading.Event()
        name = f"{self.reader}-{kind}-{shard_id}"
        workers[shard_id] = _Worker(stop, threading.Thread(target=work, args=(stop,), name=name, daemon=True))
        workers[shard_id].thread.start()

    def _end(self, workers: dict[str, _Worker], shard_id: str) -> None:
        worker = workers.pop(shard_id, None)
        if worker is not None:
            worker.stop.set()
            worker.thread.join(self.leases.lease_s / 3)

    def _iterator(self, shard_id: str, after: str | None) -> str:
        kwargs: dict[str, Any] = {**self._names, "ShardId": shard_id}
        if after:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        else:
            kwargs |= {"ShardIteratorType": "TRIM_HORIZON"}
        return str(self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def run_shard(self, shard_id: str, lease: Lease, stop: threading.Event) -> None:
        """Read one held shard until ``stop``, from its checkpoint; after a failure, resume from the
        checkpoint; at the end of a closed shard, mark it finished (its children may start). Every
        ``poll_s`` while records come; after each empty read the wait doubles, up to ``idle_poll_s``."""
        iterator: str | None = None
        wait_s = self._poll_s
        while not stop.is_set():
            try:
                iterator = iterator or self._iterator(shard_id, self.checkpoint(shard_id))
                iterator, read = self._read_once(shard_id, lease, iterator)
                if iterator is None:
                    self._finish(shard_id, lease)
                    return
            except ShardLost:
                log.info("reader %s lost %s: its checkpoint was refused", self.reader, shard_id)
                return
            except Exception:
                log.exception("reader %s on %s failed; resuming from the checkpoint", self.reader, shard_id)
                iterator = None
                stop.wait(1.0)
                continue
            wait_s = self._poll_s if read else min(2 * wait_s, self._idle_poll_s)
            stop.wait(wait_s)

    def watch_shard(self, shard_id: str, stop: threading.Event) -> None:
        """Hand the records of a shard not held here to the watcher, from the newest on, until ``stop``."""
        assert self._watcher is not None
        iterator: str | None = None
        while not stop.is_set():
            try:
                iterator = iterator or str(
                    self._kinesis.get_shard_iterator(
                        **self._names, ShardId=shard_id, ShardIteratorType="LATEST"
                    )["ShardIterator"]
                )
                response = self._kinesis.get_records(
                    ShardIterator=iterator, Limit=self._batch, **self._by_arn
                )
                records = [r for r in map(decode_record, response.get("Records", [])) if r is not None]
                if records:
                    self._watcher(records)
                next_iterator = response.get("NextShardIterator")
                if not next_iterator:
                    return  # the shard was closed
                iterator = str(next_iterator)
            except Exception:
                log.exception("watching %s failed; from the newest record again", shard_id)
                iterator = None
                stop.wait(1.0)
                continue
            stop.wait(self._poll_s if records else self._idle_poll_s)

    def _read_once(self, shard_id: str, lease: Lease, iterator: str) -> tuple[str | None, int]:
        """One ``GetRecords``: the next iterator (None once the shard is closed) and how many records."""
        response = self._kinesis.get_records(ShardIterator=iterator, Limit=self._batch, **self._by_arn)
        raw = response.get("Records", [])
        if raw:
            records = [r for r in (decode_record(x) for x in raw) if r is not None]
            self._received(records)
            checkpoint = Checkpoint(
                self._table, self.reader, shard_id, raw[-1]["SequenceNumber"], lease.owner, lease.token
            )
            self._processor(records, checkpoint)
        next_iterator = response.get("NextShardIterator")
        return (str(next_iterator) if next_iterator else None), len(raw)

    def _received(self, records: list[StreamRecord]) -> None:
        """A consumer span per record, child of the producer's: the batch mixes rides, so what the processor
        then records about a ride continues that ride's trace (``acr.tracing.RideTraces``)."""
        for record in records:
            with tracing.consuming(
                event_type=record.event.type,
                event_id=record.event.id,
                traceparent=record.event.traceparent,
                tracestate=record.event.tracestate,
                ride_id=getattr(record.data, "ride_id", None),
                destination=self._stream,
            ):
                pass

    def _finish(self, shard_id: str, lease: Lease) -> None:
        """The closed shard was read to its end: its row says so, under the lease."""
        lease_guard = guard(lease)
        self._dynamodb.update_item(
            TableName=self._table,
            Key=to_item({"leaseKey": lease.key}),
            UpdateExpression="SET #finished = :finished",
            ConditionExpression=lease_guard.condition,
            ExpressionAttributeNames=lease_guard.names | {"#finished": "finished"},
            ExpressionAttributeValues=to_item(lease_guard.values | {":finished": True}),
        )
        log.info("reader %s finished the closed shard %s", self.reader, shard_id)
