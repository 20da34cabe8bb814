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

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def no_sleep(_: float) -> None:
    return None
