"""The unit of work: a service's state change, its outgoing events (outbox) and, for a consumer,
the idempotency marker of the message it handles — committed in ONE DynamoDB transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from acr.dynamo import Transaction, TransactionCancelled, commit
from acr.envelope import CloudEvent

PENDING = "P"


class Duplicate(Exception):
    """The message was already consumed within the dedup window: acknowledge it and do nothing."""


class Conflict(Exception):
    """Another writer changed the same state first: retry the message later."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__(f"conditional check failed on {labels}")
        self.labels = labels


@dataclass(frozen=True)
class Destination:
    """Where the relay sends an outbox row: an EventBridge bus or an SNS (FIFO) topic."""

    kind: Literal["bus", "topic"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Destination:
        kind, _, name = text.partition(":")
        if kind not in ("bus", "topic") or not name:
            raise ValueError(f"bad destination {text!r}")
        return cls(kind, name)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Outgoing:
    """An event on its way out: where it goes and, for FIFO topics, its message group."""

    event: CloudEvent
    destination: Destination
    group: str | None = None


def outbox_row(outgoing: Outgoing, now: float) -> dict[str, Any]:
    """The outbox item for an event: the final CloudEvent, pending until the relay sends it."""
    return {
        "eventId": outgoing.event.id,
        "subject": outgoing.event.subject,
        "destination": str(outgoing.destination),
        "group": outgoing.group,
        "event": outgoing.event.to_json(),
        "pending": PENDING,
        "createdAt": now,
    }


def marker_row(event: CloudEvent, now: float, window_s: float) -> dict[str, Any]:
    """The consumer's idempotency marker for (source, id), valid for the dedup window."""
    return {
        "dedupKey": event.dedup_key,
        "eventId": event.id,
        "source": event.source,
        "type": event.type,
        "consumedAt": now,
        "expiresAt": int(now + window_s),
    }


# Expired markers count as absent in the condition itself: TTL deletion is lazy (and never in moto).
MARKER_CONDITION = "attribute_not_exists(dedupKey) OR expiresAt < :now"


@dataclass
class DynamoUnitOfWork:
    """Collects writes into one transaction; repositories of a service add their own operations to ``tx``."""

    dynamodb: Any
    outbox_table: str | None
    inbox_table: str | None = None
    dedup_window_s: float = 86_400
    on_commit: Callable[[], None] | None = None
    tx: Transaction = field(default_factory=Transaction)
    recorded: list[Outgoing] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def record(self, outgoing: Outgoing) -> None:
        """Publish ``outgoing`` if and only if this unit of work commits."""
        if self.outbox_table is None:
            raise RuntimeError("this service has no outbox")
        self.tx.put(self.outbox_table, outbox_row(outgoing, time.time()), label="outbox")
        self.recorded.append(outgoing)

    def mark_consumed(self, event: CloudEvent) -> None:
        """Commit only if ``event`` was not consumed within the dedup window."""
        if self.inbox_table is None:
            raise RuntimeError("this service has no inbox")
        now = time.time()
        self.tx.put(
            self.inbox_table,
            marker_row(event, now, self.dedup_window_s),
            label="marker",
            condition=MARKER_CONDITION,
            values={":now": int(now)},
        )

    def commit(self) -> None:
        """Write everything or nothing; raises ``Duplicate`` or ``Conflict``."""
        try:
            commit(self.dynamodb, self.tx)
        except TransactionCancelled as exc:
            if exc.failed("marker"):
                raise Duplicate(str(exc)) from exc
            failed = [lab for lab, r in zip(exc.labels, exc.reasons, strict=False) if r]
            raise Conflict(failed) from exc
        finally:
            self.tx = Transaction()
        if self.recorded and self.on_commit:
            self.on_commit()
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` only once this unit of work committed (e.g. to change in-memory state)."""
        self._after_commit.append(action)


class ServiceUnitOfWork:
    """Base of a service's unit of work: its repositories add operations to ``base.tx``; the outbox,
    the marker and the commit are the shared kernel's."""

    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def record(self, outgoing: Outgoing) -> None:
        self._base.record(outgoing)

    def mark_consumed(self, event: CloudEvent) -> None:
        self._base.mark_consumed(event)

    def commit(self) -> None:
        self._base.commit()
