"""DynamoDB transactions built up by repositories and committed once (``TransactWriteItems``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
MAX_TRANSACTION_ITEMS = 100
MAX_BATCH_WRITE_ITEMS = 25


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

    operations: list[dict[str, Any]] = field(default_factory=list)
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
        self.operations.append({kind: op})
        self.labels.append(label)


def commit(dynamodb: Any, transaction: Transaction) -> None:
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


def get(dynamodb: Any, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """A strongly consistent read of one item, or None."""
    response = dynamodb.get_item(TableName=table, Key=to_item(key), ConsistentRead=True)
    item = response.get("Item")
    return from_item(item) if item else None


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def delete_all(dynamodb: Any, table: str, keys: list[dict[str, Any]], attempts: int = 5) -> None:
    """Delete the items with ``keys`` (wire format), 25 to a ``BatchWriteItem``; what DynamoDB leaves
    unprocessed (throttling) is sent again, a few times, then raised."""
    for start in range(0, len(keys), MAX_BATCH_WRITE_ITEMS):
        requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + MAX_BATCH_WRITE_ITEMS]]
        for attempt in range(attempts):
            unprocessed = dynamodb.batch_write_item(RequestItems={table: requests}).get(
                "UnprocessedItems", {}
            )
            requests = unprocessed.get(table, [])
            if not requests:
                break
            time.sleep(0.05 * 2**attempt)
        else:
            raise RuntimeError(
                f"{len(requests)} deletes from {table} still unprocessed after {attempts} attempts"
            )
