"""Reading a Kinesis stream: one reader thread per shard, each shard's checkpoint in DynamoDB."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from acr.dynamo import Transaction, from_item, to_item
from acr.stream import Checkpoint, Processor, decode_record

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient

log = logging.getLogger(__name__)


def stage_checkpoint(tx: Transaction, checkpoint: Checkpoint) -> None:
    """Commit the checkpoint with the batch's other writes."""
    tx.put(checkpoint.table, checkpoint.item(), label="checkpoint")


def save_checkpoint(dynamodb: DynamoDBClient, checkpoint: Checkpoint) -> None:
    """Store the checkpoint on its own."""
    dynamodb.put_item(TableName=checkpoint.table, Item=to_item(checkpoint.item()))


class KinesisReader:
    """Reads every shard of a stream for one named reader."""

    def __init__(
        self,
        *,
        reader: str,
        kinesis: KinesisClient,
        dynamodb: DynamoDBClient,
        stream: str,
        checkpoint_table: str,
        processor: Processor,
        poll_s: float = 0.5,
        idle_poll_s: float = 2.0,
        batch: int = 500,
    ) -> None:
        self.reader = reader
        self._kinesis = kinesis
        self._dynamodb = dynamodb
        self._stream = stream
        self._table = checkpoint_table
        self._processor = processor
        self._poll_s = poll_s
        self._idle_poll_s = idle_poll_s
        self._batch = batch

    def shards(self) -> list[str]:
        return [s["ShardId"] for s in self._kinesis.list_shards(StreamName=self._stream)["Shards"]]

    def run(self, stop: threading.Event) -> None:
        """Read every shard of the stream, one thread each, until ``stop``."""
        threads = [
            threading.Thread(
                target=self.run_shard, args=(shard, stop), name=f"{self.reader}-{shard}", daemon=True
            )
            for shard in self._shards(stop)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _shards(self, stop: threading.Event) -> list[str]:
        while not stop.is_set():
            try:
                return self.shards()
            except Exception:
                log.exception("reader %s cannot list the shards of %s yet", self.reader, self._stream)
                stop.wait(1.0)
        return []

    def checkpoint(self, shard_id: str) -> str | None:
        key = Checkpoint(self._table, self.reader, shard_id, "").key
        item = self._dynamodb.get_item(TableName=self._table, Key=to_item(key), ConsistentRead=True)
        return from_item(item["Item"])["sequence"] if "Item" in item else None

    def _iterator(self, shard_id: str) -> str:
        after = self.checkpoint(shard_id)
        kwargs: dict[str, Any] = {"StreamName": self._stream, "ShardId": shard_id}
        if after:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        else:
            kwargs |= {"ShardIteratorType": "TRIM_HORIZON"}
        return str(self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def run_shard(self, shard_id: str, stop: threading.Event) -> None:
        """Read one shard until ``stop``; after a failure, resume from the last checkpoint. Every
        ``poll_s`` while records come; after each empty read the wait doubles, up to ``idle_poll_s``."""
        iterator: str | None = None
        wait_s = self._poll_s
        while not stop.is_set():
            try:
                iterator = iterator or self._iterator(shard_id)
                iterator, read = self._read_once(shard_id, iterator)
                if iterator is None:
                    return  # the shard was closed
            except Exception:
                log.exception("reader %s on %s failed; resuming from the checkpoint", self.reader, shard_id)
                iterator = None
                stop.wait(1.0)
                continue
            wait_s = self._poll_s if read else min(2 * wait_s, self._idle_poll_s)
            stop.wait(wait_s)

    def _read_once(self, shard_id: str, iterator: str) -> tuple[str | None, int]:
        """One ``GetRecords``: the next iterator (None once the shard is closed) and how many records."""
        response = self._kinesis.get_records(ShardIterator=iterator, Limit=self._batch)
        raw = response.get("Records", [])
        if raw:
            records = [r for r in (decode_record(x) for x in raw) if r is not None]
            self._processor(
                records, Checkpoint(self._table, self.reader, shard_id, raw[-1]["SequenceNumber"])
            )
        next_iterator = response.get("NextShardIterator")
        return (str(next_iterator) if next_iterator else None), len(raw)
