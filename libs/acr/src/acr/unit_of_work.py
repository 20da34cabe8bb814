"""The unit of work: a service's state change, its outgoing events (outbox) and, for a consumer,
the idempotency marker of the message it handles — committed in ONE DynamoDB transaction.

Handlers and aggregates record domain events (catalog payloads); ``outgoing`` is the one place that turns
a payload into a CloudEvent and picks its bus or topic from the catalog, so no service names a bus.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from acr import catalog
from acr.catalog.base import Destination, EventData
from acr.envelope import CloudEvent

PENDING = "P"
PIPE = "PIPE"
"""The status of a row the outbox's Pipe publishes (``pipes`` relay): never pending, never claimed."""
SENT_RETENTION_S = 300.0  # sent rows serve the ops timeline and resend counts; then they only cost
OutboxRelay = Literal["polling", "pipes"]
"""Who publishes the bus rows: the service's polling relay, or the DynamoDB stream + EventBridge Pipe of the
exported stacks (docs/deploy.md). Topic rows are always the polling relay's: a Pipe cannot target SNS FIFO."""
MAX_TRANSACTION_ITEMS = 100  # what one unit of work can commit: DynamoDB's limit for a transaction


class Duplicate(Exception):
    """The message was already consumed within the dedup window: acknowledge it and do nothing."""


class Conflict(Exception):
    """Another writer changed the same state first: retry the message later."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__(f"conditional check failed on {labels}")
        self.labels = labels


@dataclass(frozen=True)
class Outgoing:
    """An event on its way out: where it goes and, for FIFO topics, its message group."""

    event: CloudEvent
    destination: Destination
    group: str | None = None


def outgoing(data: EventData, *, subject: str | None, sequence: int | None = None) -> Outgoing:
    """A new event for ``data``, addressed where the catalog says its type is published (an SNS FIFO topic
    groups by ``subject``)."""
    spec = catalog.spec_of(data)
    event = catalog.record(data, subject=subject, sequence=sequence)
    group = subject if spec.destination.kind == "topic" else None
    return Outgoing(event, spec.destination, group)


def outgoings(data: EventData, *, subject: str | None, sequence: int | None = None) -> list[Outgoing]:
    """``outgoing``, plus for an archived type its copy for the context's bus: the same event under an id
    of its own (outbox rows are keyed by event id), which only the bus's archive and rebuilds read."""
    first = outgoing(data, subject=subject, sequence=sequence)
    copies = catalog.spec_of(data).destinations[1:]
    return [first] + [
        Outgoing(first.event.model_copy(update={"id": str(uuid.uuid4())}), destination)
        for destination in copies
    ]


class UnitOfWork(Protocol):
    """What a handler stages into: events to publish, the consumed message's marker, actions to run once
    everything committed. A service's unit of work adds its repositories."""

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        """Publish ``data`` if and only if this unit of work commits."""
        ...

    def mark_consumed(self, event: CloudEvent) -> None:
        """Commit only if ``event`` was not consumed before (within the dedup window)."""
        ...

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this unit of work committed (e.g. to change in-memory state)."""
        ...

    def commit(self) -> None:
        """Write everything or nothing; raises ``Duplicate`` or ``Conflict``."""
        ...


def outbox_row(
    outgoing: Outgoing,
    now: float,
    *,
    relay: OutboxRelay = "polling",
    retention_s: float = SENT_RETENTION_S,
) -> dict[str, Any]:
    """The outbox item for an event: the final CloudEvent with its ``type`` and ``source`` (the Pipe's
    detail-type and source), pending until the relay sends it. With the ``pipes`` relay a bus row is the
    Pipe's instead: never pending (no relay claims it, the backlog's age ignores it) and, since nobody marks
    it sent, expiring from its insert like a sent row."""
    row = {
        "eventId": outgoing.event.id,
        "subject": outgoing.event.subject,
        "destination": str(outgoing.destination),
        "group": outgoing.group,
        "type": outgoing.event.type,
        "source": outgoing.event.source,
        "event": outgoing.event.to_json(),
        "createdAt": now,
    }
    if is_piped(outgoing, relay):
        return row | {"status": PIPE, "expiresAt": int(now + retention_s)}
    return row | {"pending": PENDING}


def is_piped(outgoing: Outgoing, relay: OutboxRelay) -> bool:
    """Is ``outgoing`` published by the outbox's Pipe (a bus event, with the ``pipes`` relay)?"""
    return relay == "pipes" and outgoing.destination.kind == "bus"


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


class EffectsOnly:
    """The unit of work of a consumer with no store of its own (the BFF's push): no outbox, no marker
    (its effects are idempotent by version), only the actions ``commit`` runs."""

    def __init__(self) -> None:
        self._actions: list[Callable[[], None]] = []

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:  # noqa: ARG002
        raise RuntimeError(f"a consumer without a store cannot publish {type(data).__name__}")

    def mark_consumed(self, event: CloudEvent) -> None:  # noqa: ARG002
        return None

    def after_commit(self, action: Callable[[], None]) -> None:
        self._actions.append(action)

    def commit(self) -> None:
        actions, self._actions = self._actions, []
        for action in actions:
            action()
