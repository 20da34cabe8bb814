"""What a stream processor is given: typed records of a shard and the checkpoint they reach.

A processor gets each batch with its ``Checkpoint`` and persists it itself — ideally in the same
transaction as the state and outbox rows the batch produced, so a restart resumes exactly after the
last committed batch and never repeats a side effect. ``acr.kinesis`` reads the shards.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acr.catalog.base import EventData
from acr.consumer import PoisonMessage, decode
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS

if TYPE_CHECKING:
    from mypy_boto3_kinesis.type_defs import RecordTypeDef


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamRecord:
    sequence: str
    partition_key: str
    event: CloudEvent
    data: EventData


def shard_lease_key(reader: str, shard_id: str) -> str:
    """The lease row of ``reader`` on ``shard_id`` (``acr.leases``), which also holds its checkpoint."""
    return f"shard#{reader}#{shard_id}"


@dataclass(frozen=True)
class Checkpoint:
    """Where ``reader`` is on ``shard_id``: everything up to ``sequence`` is done.

    It is stored on the shard's lease row in ``table`` (the service's lease table), and only while that
    lease is still ``owner``'s under fencing ``token``: a replica that lost the shard cannot move it (its
    transaction fails and the processor raises ``ShardLost``)."""

    table: str
    reader: str
    shard_id: str
    sequence: str
    owner: str = ""
    token: int = 0

    @property
    def key(self) -> dict[str, str]:
        return {"leaseKey": shard_lease_key(self.reader, self.shard_id)}

    def item(self) -> dict[str, Any]:
        """The lease row's key and the stored position."""
        return self.key | {"sequence": self.sequence}


class ShardLost(Exception):
    """A checkpoint was refused: this replica no longer holds the shard's lease, so it stops reading it
    (the new holder resumes from the last checkpoint this one committed)."""


class CheckpointPace:
    """Whether a batch that wrote nothing else stores its checkpoint anyway: once every ``every_s`` per
    shard. Skipping it suits records that change nothing: after a restart they are read again and change
    nothing again, and the pace bounds how many are read again."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._stored_at: dict[str, float] = {}  # shard -> the caller's clock when its checkpoint was stored

    def due(self, checkpoint: Checkpoint, now: float) -> bool:
        return now - self._stored_at.get(checkpoint.shard_id, -math.inf) >= self.every_s

    def stored(self, checkpoint: Checkpoint, now: float) -> None:
        self._stored_at[checkpoint.shard_id] = now


Processor = Callable[[list[StreamRecord], Checkpoint], None]


def decode_record(record: RecordTypeDef) -> StreamRecord | None:
    """A Kinesis record as a typed event; None (and counted) when it is not a catalog event."""
    raw = record["Data"]
    try:
        event, data = decode(raw.decode() if isinstance(raw, bytes) else raw)
    except PoisonMessage as exc:
        log.warning("skipping poison record %s: %s", record.get("SequenceNumber"), exc)
        COUNTERS.add("poisonRecords")
        return None
    return StreamRecord(record["SequenceNumber"], record["PartitionKey"], event, data)
