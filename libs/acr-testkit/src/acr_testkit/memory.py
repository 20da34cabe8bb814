"""The in-memory twin of ``DynamoUnitOfWork`` for fast tests: staged writes with conditions, committed
all or nothing, with the same outcomes (``Duplicate`` for a marker seen before, ``Conflict`` otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from acr.catalog.base import EventData
from acr.envelope import CloudEvent
from acr.unit_of_work import Conflict, Duplicate, Outgoing, outgoing

Check = Callable[[], str | None]  # the label of a condition that failed, or None
Apply = Callable[[], None]


@dataclass
class MessageStore:
    """What every in-memory store keeps besides its own state: the outbox and the markers."""

    markers: set[str] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)

    def published(self) -> list[EventData]:
        """The payloads recorded so far, oldest first (decoded from the outbox)."""
        from acr import catalog

        return [catalog.decode(o.event) for o in self.outbox]


class MemoryUnitOfWork:
    """Services' fakes subclass it and add repositories that call ``stage``. ``commits`` counts the
    commits that went through (tests check one per message)."""

    def __init__(
        self, store: MessageStore, before_commit: Callable[[], None] | None = None, *, marked: bool = True
    ) -> None:
        self.messages = store
        self.commits = 0
        self._marked = marked
        self._ops: list[tuple[Check, Apply]] = []
        self._after_commit: list[Apply] = []
        self._before_commit = before_commit

    def stage(self, check: Check, apply: Apply) -> None:
        """A write that happens at commit if ``check`` (evaluated at commit) passes for every write."""
        self._ops.append((check, apply))

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        event = outgoing(data, subject=subject, sequence=sequence)
        self.stage(lambda: None, lambda: self.messages.outbox.append(event))

    def mark_consumed(self, event: CloudEvent) -> None:
        if not self._marked:
            return
        key = event.dedup_key
        self.stage(
            lambda: "marker" if key in self.messages.markers else None, lambda: self.messages.markers.add(key)
        )

    def after_commit(self, action: Apply) -> None:
        self._after_commit.append(action)

    def commit(self) -> None:
        if self._before_commit:
            self._before_commit()  # lets a test run a competing writer right before this commit
        failed = [label for check, _ in self._ops if (label := check())]
        ops, self._ops = self._ops, []
        if "marker" in failed:
            raise Duplicate("already consumed")
        if failed:
            raise Conflict(failed)
        for _, apply in ops:
            apply()
        self.commits += 1
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()
