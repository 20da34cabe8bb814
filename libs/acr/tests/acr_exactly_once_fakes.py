"""Doubles for the exactly-once tests (no emulator process): DynamoDB is in-process moto (real conditions,
real cancellation reasons); SQS that can receive what the consumer re-sends, a scriptable channel and a
settable clock are hand-written.

Imported by the tests of this folder (pytest appends this folder to ``sys.path``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from acr import dynamo, relay
from acr.catalog.fleet import NoCarAvailable
from acr.dynamo import from_item, get
from acr.topology import ServiceTopology, Table
from acr.unit_of_work import Outgoing
from acr_testkit.aws import in_process_tables
from acr_testkit.sqs import FakeSqs

# --- DynamoDB on in-process moto -------------------------------------------------------------------------
STATE = "acr-svc-state"
SVC = ServiceTopology("svc", "fleet", publishes=(NoCarAvailable,), inbox=True, tables=(Table(STATE, "id"),))
"""A service slice with the kernel's tables: ``acr-svc-outbox`` (with its pending index), ``acr-svc-inbox``
and a state table keyed by ``id``."""
OUTBOX, INBOX = SVC.outbox_table, SVC.inbox_table


class Dynamo:
    """A DynamoDB client on in-process moto, with what the tests read back (``rows``, ``row``) and how many
    transactions were asked for. DynamoDB serializes transactions on the same items; moto's in-process
    backend does not (it rolls back by restoring a copy of each table), so calls here take one lock."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.RLock()
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call

    def transact_write_items(self, **kwargs: Any) -> Any:
        with self._lock:
            self.transactions += 1
            return self._client.transact_write_items(**kwargs)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Plain values of every item of ``table``."""
        return [from_item(i) for i in self.scan(TableName=table, ConsistentRead=True)["Items"]]

    def row(self, table: str, **key: Any) -> dict[str, Any] | None:
        """The item with this key, as plain values."""
        return get(self, table, key)


@contextmanager
def in_process_dynamodb(tables: list[Table] | None = None) -> Iterator[Dynamo]:
    """``Dynamo`` on a fresh in-process moto holding ``tables`` (default: those of ``SVC``)."""
    with in_process_tables(SVC.all_tables() if tables is None else tables) as client:
        yield Dynamo(client)


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

    def attribute(self, message: dict[str, Any], name: str) -> str | None:
        value = message.get("MessageAttributes", {}).get(name)
        return value["StringValue"] if value else None


class FifoSqs:
    """An SQS FIFO queue with what the order and the redrive policy depend on: a message received is
    invisible until its visibility timeout ends; a group with a message in flight gives nothing more
    until that one is deleted or visible again; every receive counts, and a message received more than
    ``max_receives`` times is moved to the DLQ instead (the queue's redrive policy). Times come from
    ``clock``."""

    def __init__(self, url: str, dlq_url: str, clock: Clock, max_receives: int = 10) -> None:
        self.url, self.dlq_url, self.clock, self.max_receives = url, dlq_url, clock, max_receives
        self.messages: list[dict[str, Any]] = []  # in send order
        self.dead: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.sent: list[dict[str, Any]] = []  # what the consumer sent (its own DLQ sends)
        self._ids = itertools.count(1)

    def put(self, body: str, group: str) -> str:
        message_id = f"f{next(self._ids)}"
        self.messages.append(
            {"MessageId": message_id, "Body": body, "group": group, "receives": 0, "visible_at": 0.0}
        )
        return message_id

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int = 10, **_: Any) -> dict[str, Any]:  # noqa: N803
        assert QueueUrl == self.url
        now, busy, out = self.clock.now, set(), []
        for message in list(self.messages):
            if message["group"] in busy or len(out) == MaxNumberOfMessages:
                continue
            if message["visible_at"] > now:
                busy.add(message["group"])  # in flight: the rest of its group waits
                continue
            if message["receives"] >= self.max_receives:
                self.messages.remove(message)
                self.dead.append(message)
                continue
            message["receives"] += 1
            message["visible_at"] = now + 30
            message["receipt"] = f"{message['MessageId']}-r{message['receives']}"
            out.append(self._view(message))
        return {"Messages": out}

    @staticmethod
    def _view(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "MessageId": message["MessageId"],
            "ReceiptHandle": message["receipt"],
            "Body": message["Body"],
            "Attributes": {
                "ApproximateReceiveCount": str(message["receives"]),
                "MessageGroupId": message["group"],
            },
        }

    def _by_receipt(self, receipt: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m.get("receipt") == receipt), None)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:  # noqa: N803
        for entry in Entries:
            message = self._by_receipt(entry["ReceiptHandle"])
            if message is not None:
                self.messages.remove(message)
                self.deleted.append(message["MessageId"])

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:  # noqa: N803
        message = self._by_receipt(ReceiptHandle)
        if message is not None:
            message["visible_at"] = self.clock.now + VisibilityTimeout

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        for entry in Entries:
            self.change_message_visibility(QueueUrl, entry["ReceiptHandle"], int(entry["VisibilityTimeout"]))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str, **kwargs: Any) -> None:  # noqa: N803
        self.sent.append({"QueueUrl": QueueUrl, "Body": MessageBody, **kwargs})

    def bodies(self) -> list[str]:
        return [m["Body"] for m in self.messages]


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

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def no_sleep(_: float) -> None:
    return None


PRODUCER_DLQ = "https://sqs/acr-svc-producer-dlq"


@pytest.fixture
def relay_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fake clock for the relay and the unit of work (both read ``time.time()``)."""
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(relay, "time", clock)
    monkeypatch.setattr(dynamo, "time", clock)
    return clock


@pytest.fixture
def outbox_dynamodb() -> Iterator[Dynamo]:
    """An in-process DynamoDB with the outbox, inbox and state tables of the service ``svc``."""
    with in_process_dynamodb() as client:
        yield client
