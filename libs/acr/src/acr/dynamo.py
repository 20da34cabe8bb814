"""DynamoDB: transactions built up by repositories and committed once (``TransactWriteItems``), and the
unit of work on them (state, outbox rows and the consumed message's marker in one transaction)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from acr.catalog.base import EventData
from acr.envelope import CloudEvent
from acr.unit_of_work import (
    MARKER_CONDITION,
    MAX_TRANSACTION_ITEMS,
    SENT_RETENTION_S,
    Conflict,
    Duplicate,
    OutboxRelay,
    Outgoing,
    is_piped,
    marker_row,
    outbox_row,
    outgoings,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        TransactWriteItemTypeDef,
    )


_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain Python values (floats allowed) to DynamoDB attribute values."""
    return {k: _SERIALIZER.serialize(_to_dynamo(v)) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values to plain Python values (whole numbers as int)."""
    return {k: _from_dynamo(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


class TransactionCancelled(Exception):
    """The transaction was cancelled; ``reasons[i]`` is the code for item ``i`` (None when it was fine)."""

    def __init__(self, reasons: list[str | None], labels: list[str]) -> None:
        super().__init__(f"transaction cancelled: {list(zip(labels, reasons, strict=False))}")
        self.reasons = reasons
        self.labels = labels

    def failed(self, label: str) -> bool:
        """Did the item(s) with this label fail their condition?"""
        return any(
            lab == label and reason == "ConditionalCheckFailed"
            for lab, reason in zip(self.labels, self.reasons, strict=False)
        )


@dataclass
class Transaction:
    """Write operations to commit atomically; each carries a label so a cancellation can be explained."""

    operations: list[TransactWriteItemTypeDef] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def put(
        self,
        table: str,
        item: Mapping[str, Any],
        *,
        label: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        op: dict[str, Any] = {"TableName": table, "Item": to_item(item)}
        self._add("Put", op, label, condition, names, values)

    def update(
        self,
        table: str,
        key: Mapping[str, Any],
        expression: str,
        *,
        label: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        op: dict[str, Any] = {"TableName": table, "Key": to_item(key), "UpdateExpression": expression}
        self._add("Update", op, label, condition, names, values)

    def check(
        self,
        table: str,
        key: Mapping[str, Any],
        *,
        label: str,
        condition: str,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """A condition on an item the transaction does not write (e.g. a lease's guard): all or nothing
        commits only while it holds."""
        op: dict[str, Any] = {"TableName": table, "Key": to_item(key)}
        self._add("ConditionCheck", op, label, condition, names, values)

    def _add(
        self,
        kind: str,
        op: dict[str, Any],
        label: str,
        condition: str | None,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> None:
        if condition:
            op["ConditionExpression"] = condition
        if names:
            op["ExpressionAttributeNames"] = dict(names)
        if values:
            op["ExpressionAttributeValues"] = to_item(values)
        self.operations.append(cast("TransactWriteItemTypeDef", {kind: op}))
        self.labels.append(label)


def commit(dynamodb: DynamoDBClient, transaction: Transaction) -> None:
    """Commit every operation or none; raises ``TransactionCancelled`` with per-item reasons."""
    if not transaction.operations:
        return
    if len(transaction.operations) > MAX_TRANSACTION_ITEMS:
        raise ValueError(f"a transaction holds at most {MAX_TRANSACTION_ITEMS} items")
    try:
        dynamodb.transact_write_items(TransactItems=transaction.operations)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = [
            r.get("Code") if r.get("Code") not in (None, "None") else None
            for r in exc.response.get("CancellationReasons", [])
        ]
        if not reasons:
            reasons = _reasons_from_message(str(exc), len(transaction.operations))
        raise TransactionCancelled(reasons, transaction.labels) from exc


def _reasons_from_message(message: str, count: int) -> list[str | None]:
    """Some emulators only put the reasons in the message: ``[None, ConditionalCheckFailed, ...]``."""
    start, end = message.rfind("["), message.rfind("]")
    if start < 0 or end < start:
        return [None] * count
    parts = [p.strip() for p in message[start + 1 : end].split(",")]
    return [None if p in ("None", "") else p for p in parts][:count]


def get(dynamodb: DynamoDBClient, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """A strongly consistent read of one item, or None."""
    response = dynamodb.get_item(TableName=table, Key=to_item(key), ConsistentRead=True)
    item = response.get("Item")
    return from_item(item) if item else None


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass
class DynamoUnitOfWork:
    """Collects writes into one transaction; repositories of a service add their own operations to ``tx``.

    Without an inbox table the consumer keeps no markers: its writes are idempotent by themselves (a read
    model written only over an older version, a push deduplicated by version), so ``mark_consumed`` stages
    nothing. With the ``pipes`` relay, bus rows are written for the outbox's Pipe (``outbox_row``) and a
    commit that recorded only those wakes no relay."""

    dynamodb: DynamoDBClient
    outbox_table: str | None
    inbox_table: str | None = None
    dedup_window_s: float = 86_400
    on_commit: Callable[[], None] | None = None
    outbox_relay: OutboxRelay = "polling"
    sent_retention_s: float = SENT_RETENTION_S
    archive_copies: bool = False
    """Also record, for a type the catalog archives, its copy for the context's bus (``outgoings``); a
    service's ``Messaging`` turns it on."""
    tx: Transaction = field(default_factory=Transaction)
    recorded: list[Outgoing] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        if self.outbox_table is None:
            raise RuntimeError("this service has no outbox")
        recorded = outgoings(data, subject=subject, sequence=sequence)
        for event in recorded if self.archive_copies else recorded[:1]:
            row = outbox_row(event, time.time(), relay=self.outbox_relay, retention_s=self.sent_retention_s)
            self.tx.put(self.outbox_table, row, label="outbox")
            self.recorded.append(event)

    def mark_consumed(self, event: CloudEvent) -> None:
        if self.inbox_table is None:
            return
        now = time.time()
        self.tx.put(
            self.inbox_table,
            marker_row(event, now, self.dedup_window_s),
            label="marker",
            condition=MARKER_CONDITION,
            values={":now": int(now)},
        )

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)

    def commit(self) -> None:
        try:
            commit(self.dynamodb, self.tx)
        except TransactionCancelled as exc:
            if exc.failed("marker"):
                raise Duplicate(str(exc)) from exc
            failed = [lab for lab, r in zip(exc.labels, exc.reasons, strict=False) if r]
            raise Conflict(failed) from exc
        finally:
            self.tx = Transaction()
        if self.on_commit and any(not is_piped(o, self.outbox_relay) for o in self.recorded):
            self.on_commit()
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()


class ServiceUnitOfWork:
    """Base of a service's unit of work: its repositories add operations to ``base.tx``; the outbox,
    the marker, the after-commit actions and the commit are the shared kernel's."""

    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        self._base.record(data, subject=subject, sequence=sequence)

    def mark_consumed(self, event: CloudEvent) -> None:
        self._base.mark_consumed(event)

    def after_commit(self, action: Callable[[], None]) -> None:
        self._base.after_commit(action)

    def commit(self) -> None:
        self._base.commit()
