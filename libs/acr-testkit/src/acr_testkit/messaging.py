"""A stand-in for a service's messaging in wiring tests: consumers are registered as in production and
a test delivers events to them synchronously, through the kernel's idempotent consumer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from acr import catalog
from acr.catalog.base import EventData
from acr.consumer import Handlers, MessageHandler, U, idempotent
from acr.envelope import CloudEvent
from acr.errors import NotFound
from acr.kinesis import Watcher
from acr.stream import Processor


@dataclass
class FakeMessaging:
    """Records what a wiring subscribes to; ``deliver`` hands an event to the queue's consumer."""

    consumers: dict[str, MessageHandler] = field(default_factory=dict)
    streams: dict[str, Processor] = field(default_factory=dict)
    watchers: dict[str, Watcher] = field(default_factory=dict)

    def consume(
        self, queue: str, handlers: Handlers[U], unit_of_work: Callable[[], U], *, fifo: bool = False
    ) -> None:
        self.consumers[queue + (".fifo" if fifo else "")] = idempotent(unit_of_work, handlers)

    def read_stream(
        self,
        reader: str,
        stream: str,
        checkpoint_table: str,
        processor: Processor,
        poll_s: float = 0.5,
        *,
        watcher: Watcher | None = None,
    ) -> None:
        del stream, checkpoint_table, poll_s
        self.streams[reader] = processor
        if watcher is not None:
            self.watchers[reader] = watcher

    def deliver(
        self, queue: str, data: EventData, *, subject: str | None = None, sequence: int | None = None
    ) -> CloudEvent:
        """Consume a new event carrying ``data`` on ``queue`` (raises what the consumer raises)."""
        event = catalog.record(data, subject=subject, sequence=sequence)
        self.consumers[queue](event, data)
        return event

    def stats(self) -> dict[str, object]:
        return {"dlq": {}}

    @property
    def has_outbox(self) -> bool:
        return False

    def dead_letter_depths(self) -> dict[str, int]:
        return {}

    def oldest_pending_ms(self) -> float | None:
        return None

    def redrive_dead_letters(self) -> int:
        return 0

    def dead_letter_queues(self) -> list[dict[str, object]]:
        return []

    def redrive_dead_letter_queue(self, queue: str) -> dict[str, object]:
        raise NotFound(f"{queue} is not a dead-letter queue of this service")

    def events_about(self, subject: str) -> list[dict[str, object]]:
        del subject
        return []
