"""In-memory doubles for the exactly-once tests (no emulator): DynamoDB with real condition semantics,
SQS that can receive what the consumer re-sends, a scriptable channel and a settable clock.

Imported by the ``test_acr_*`` modules of this folder (pytest appends this folder to ``sys.path``).
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Sequence
from typing import Any

from acr_testkit.sqs import FakeSqs
from botocore.exceptions import ClientError

from acr.dynamo import from_item
from acr.unit_of_work import Outgoing

# --- conditions -----------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(attribute_not_exists|attribute_exists|AND\b|OR\b|NOT\b|\(|\)|<=|>=|<>|=|<|>|"
    r":[A-Za-z0-9_]+|#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)"
)
_MISSING = object()


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise NotImplementedError(f"fake DynamoDB cannot parse {text[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _Condition:
    """Evaluates the condition expressions ACR uses: AND/OR/NOT, parentheses, attribute_(not_)exists,
    comparisons of an attribute with a value. Comparing a missing attribute is false (as in DynamoDB)."""

    def __init__(self, text: str, names: dict[str, str], values: dict[str, Any]) -> None:
        self._tokens = _tokens(text)
        self._names = names
        self._values = values
        self._pos = 0

    def evaluate(self, item: dict[str, Any] | None) -> bool:
        self._pos = 0
        result = self._or(item or {})
        if self._pos != len(self._tokens):
            raise NotImplementedError(f"trailing tokens {self._tokens[self._pos :]}")
        return result

    def _peek(self) -> str | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self) -> str:
        token = self._tokens[self._pos]
        self._pos += 1
        return token

    def _or(self, item: dict[str, Any]) -> bool:
        result = self._and(item)
        while self._peek() == "OR":
            self._take()
            right = self._and(item)
            result = result or right
        return result

    def _and(self, item: dict[str, Any]) -> bool:
        result = self._not(item)
        while self._peek() == "AND":
            self._take()
            right = self._not(item)
            result = result and right
        return result

    def _not(self, item: dict[str, Any]) -> bool:
        if self._peek() == "NOT":
            self._take()
            return not self._not(item)
        return self._atom(item)

    def _atom(self, item: dict[str, Any]) -> bool:
        token = self._take()
        if token == "(":
            result = self._or(item)
            assert self._take() == ")"
            return result
        if token in ("attribute_exists", "attribute_not_exists"):
            assert self._take() == "("
            present = self._name(self._take()) in item
            assert self._take() == ")"
            return present if token == "attribute_exists" else not present
        left = self._operand(token, item)
        op = self._take()
        right = self._operand(self._take(), item)
        if left is _MISSING or right is _MISSING:
            return False
        return {
            "=": left == right,
            "<>": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]

    def _name(self, token: str) -> str:
        return self._names[token] if token.startswith("#") else token

    def _operand(self, token: str, item: dict[str, Any]) -> Any:
        if token.startswith(":"):
            return self._values[token]
        return item.get(self._name(token), _MISSING)


def _plain_values(values: dict[str, Any] | None) -> dict[str, Any]:
    return from_item(values or {})


def _conditional_failure() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}},
        "PutItem",
    )


# --- DynamoDB -------------------------------------------------------------------------------------------
class FakeDynamoDB:
    """The DynamoDB calls the shared kernel makes, on dict tables, one lock for atomicity.

    Items are kept in DynamoDB's wire format; conditions are evaluated on their plain values.
    ``tables`` maps a table name to its key attribute names (unknown tables are keyed by their first key).
    ``message_only_reasons`` mimics emulators that only put the cancellation reasons in the message.
    """

    def __init__(self, tables: dict[str, tuple[str, ...]], *, message_only_reasons: bool = False) -> None:
        self.keys = tables
        self.items: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {name: {} for name in tables}
        self.message_only_reasons = message_only_reasons
        self.transactions = 0
        self.lock = threading.Lock()

    # helpers
    def _key(self, table: str, item: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(repr(item[k]) for k in self.keys[table])

    def _current(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
        found = self.items[table].get(key)
        return from_item(found) if found else None

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Plain values of every item of ``table``."""
        with self.lock:
            return [from_item(i) for i in self.items[table].values()]

    def row(self, table: str, **key: Any) -> dict[str, Any] | None:
        return next((r for r in self.rows(table) if all(r.get(k) == v for k, v in key.items())), None)

    @staticmethod
    def _passes(op: dict[str, Any], current: dict[str, Any] | None) -> bool:
        condition = op.get("ConditionExpression")
        if not condition:
            return True
        values = _plain_values(op.get("ExpressionAttributeValues"))
        return _Condition(condition, op.get("ExpressionAttributeNames", {}), values).evaluate(current)

    def _apply_update(self, table: str, key_item: dict[str, Any], op: dict[str, Any]) -> None:
        key = self._key(table, key_item)
        item = copy.deepcopy(self.items[table].get(key, dict(key_item)))
        names = op.get("ExpressionAttributeNames", {})
        values = op.get("ExpressionAttributeValues", {})
        expression = op["UpdateExpression"]
        set_part, _, remove_part = expression.partition(" REMOVE ")
        set_part, _, add_part = set_part.partition(" ADD ")
        set_part = set_part.strip()
        if set_part.startswith("SET "):
            for clause in set_part[4:].split(","):
                name, _, value = (p.strip() for p in clause.partition("="))
                if not value.startswith(":"):
                    raise NotImplementedError(f"fake DynamoDB cannot apply {clause!r}")
                item[names.get(name, name)] = values[value]
        for clause in filter(None, (c.strip() for c in add_part.split(","))):
            name, value = clause.split()
            current = int(item.get(names.get(name, name), {"N": "0"})["N"])
            item[names.get(name, name)] = {"N": str(current + int(values[value]["N"]))}
        for name in filter(None, (n.strip() for n in remove_part.split(","))):
            item.pop(names.get(name, name), None)
        self.items[table][key] = item

    # the client API
    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.transactions += 1
            reasons: list[str | None] = []
            for entry in TransactItems:
                ((kind, op),) = entry.items()
                table = op["TableName"]
                key_item = op["Item"] if kind == "Put" else op["Key"]
                current = self._current(table, self._key(table, key_item))
                reasons.append(None if self._passes(op, current) else "ConditionalCheckFailed")
            if any(reasons):
                codes = ", ".join(r or "None" for r in reasons)
                response: dict[str, Any] = {
                    "Error": {
                        "Code": "TransactionCanceledException",
                        "Message": f"Transaction cancelled, please refer cancellation reasons [{codes}]",
                    }
                }
                if not self.message_only_reasons:
                    response["CancellationReasons"] = [
                        {"Code": r or "None"} | ({"Message": "The conditional request failed"} if r else {})
                        for r in reasons
                    ]
                raise ClientError(response, "TransactWriteItems")
            for entry in TransactItems:
                ((kind, op),) = entry.items()
                table = op["TableName"]
                if kind == "Put":
                    self.items[table][self._key(table, op["Item"])] = copy.deepcopy(op["Item"])
                elif kind == "Update":
                    self._apply_update(table, op["Key"], op)
                elif kind == "Delete":
                    self.items[table].pop(self._key(table, op["Key"]), None)
            return {}

    def put_item(self, TableName: str, Item: dict[str, Any], **kwargs: Any) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            key = self._key(TableName, Item)
            if not self._passes(kwargs, self._current(TableName, key)):
                raise _conditional_failure()
            self.items[TableName][key] = copy.deepcopy(Item)
            return {}

    def update_item(self, TableName: str, Key: dict[str, Any], **kwargs: Any) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            if not self._passes(kwargs, self._current(TableName, self._key(TableName, Key))):
                raise _conditional_failure()
            self._apply_update(TableName, Key, kwargs)
            if kwargs.get("ReturnValues") == "ALL_NEW":
                return {"Attributes": copy.deepcopy(self.items[TableName][self._key(TableName, Key)])}
            return {}

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            found = self.items[TableName].get(self._key(TableName, Key))
            return {"Item": copy.deepcopy(found)} if found else {}

    def delete_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.items[TableName].pop(self._key(TableName, Key), None)
            return {}

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:  # noqa: N803
        """Deletes only (what the relay's purge sends)."""
        with self.lock:
            for table, requests in RequestItems.items():
                for request in requests:
                    self.items[table].pop(self._key(table, request["DeleteRequest"]["Key"]), None)
            return {"UnprocessedItems": {}}

    def query(  # the outbox's pending index: equality on one attribute, oldest first
        self,
        TableName: str,  # noqa: N803
        KeyConditionExpression: str,  # noqa: N803
        ExpressionAttributeValues: dict[str, Any],  # noqa: N803
        ExpressionAttributeNames: dict[str, str] | None = None,  # noqa: N803
        Limit: int = 1000,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        condition = _Condition(
            KeyConditionExpression, ExpressionAttributeNames or {}, _plain_values(ExpressionAttributeValues)
        )
        with self.lock:
            items = [i for i in self.items[TableName].values() if condition.evaluate(from_item(i))]
        items.sort(key=lambda i: from_item(i).get("createdAt", 0))
        return {"Items": copy.deepcopy(items[:Limit])}

    def scan(
        self,
        TableName: str,  # noqa: N803
        FilterExpression: str,  # noqa: N803
        ExpressionAttributeValues: dict[str, Any],  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        condition = _Condition(FilterExpression, {}, _plain_values(ExpressionAttributeValues))
        with self.lock:
            items = [i for i in self.items[TableName].values() if condition.evaluate(from_item(i))]
        return {"Items": copy.deepcopy(items)}


# --- SQS ------------------------------------------------------------------------------------------------
class Sqs(FakeSqs):
    """``FakeSqs`` whose re-sent messages can be received again (ids, receipt handles, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self._sent_ids = itertools.count(1)

    def send_message(self, QueueUrl: str, MessageBody: str, **kwargs: Any) -> None:  # noqa: N803
        message_id = f"s{next(self._sent_ids)}"
        self.queues.setdefault(QueueUrl, []).append(
            {
                "MessageId": message_id,
                "ReceiptHandle": f"rh-{message_id}",
                "Body": MessageBody,
                "Attributes": {"ApproximateReceiveCount": "1"},
                **kwargs,
            }
        )

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int = 10, **_: Any) -> dict[str, Any]:  # noqa: N803
        return {"Messages": list(self.queues.get(QueueUrl, []))[:MaxNumberOfMessages]}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:  # noqa: N803
        self.deleted.append(ReceiptHandle)
        self.queues[QueueUrl] = [m for m in self.queues[QueueUrl] if m["ReceiptHandle"] != ReceiptHandle]

    def attribute(self, message: dict[str, Any], name: str) -> str | None:
        value = message.get("MessageAttributes", {}).get(name)
        return value["StringValue"] if value else None


# --- channels and clocks --------------------------------------------------------------------------------
class ScriptedChannel:
    """Answers each call from a script of per-entry codes (None = accepted) or an exception to raise;
    once the script is used up every entry is accepted. Records what each call carried."""

    max_batch = 10

    def __init__(self, script: Sequence[list[str | None] | Exception] = ()) -> None:
        self.script = list(script)
        self.calls: list[list[Outgoing]] = []

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        self.calls.append(list(batch))
        if not self.script:
            return [None] * len(batch)
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert len(answer) == len(batch)
        return answer

    def sent_ids(self) -> list[str]:
        return [o.event.id for call in self.calls for o in call]


class Clock:
    """A settable ``time`` module stand-in: ``monkeypatch.setattr(module, "time", clock)``."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def no_sleep(_: float) -> None:
    return None
