"""The in-memory twin of ``DynamoUnitOfWork`` for fast tests: staged writes with conditions, committed
all or nothing, with the same outcomes (``Duplicate`` for a marker seen before, ``Conflict`` otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from acr.envelope import CloudEvent
from acr.unit_of_work import Conflict, Duplicate, Outgoing

Check = Callable[[], str | None]  # the label of a condition that failed, or None
Apply = Callable[[], None]


class MessageStore(Protocol):
    """What every in-memory store keeps besides its own state: the outbox and the markers."""

    markers: set[str]
    outbox: list[Outgoing]


class MemoryUnitOfWork:
    """Services subclass it and add repositories that call ``stage``."""

    def __init__(self, store: MessageStore, before_commit: Callable[[], None] | None = None) -> None:
        self.messages = store
        self._ops: list[tuple[Check, Apply]] = []
        self._after_commit: list[Apply] = []
        self._before_commit = before_commit

    def stage(self, check: Check, apply: Apply) -> None:
        """A write that happens at commit if ``check`` (evaluated at commit) passes for every write."""
        self._ops.append((check, apply))

    def record(self, outgoing: Outgoing) -> None:
        self.stage(lambda: None, lambda: self.messages.outbox.append(outgoing))

    def mark_consumed(self, event: CloudEvent) -> None:
        key = event.dedup_key
        self.stage(
            lambda: "marker" if key in self.messages.markers else None, lambda: self.messages.markers.add(key)
        )

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
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()

    def after_commit(self, action: Apply) -> None:
        self._after_commit.append(action)
