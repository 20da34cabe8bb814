"""What the car edge needs from the outside world."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from acr.envelope import CloudEvent
from car_simulator.domain import Leg, Point
from car_simulator.simulation import Report


class Roads(Protocol):
    """Driving routes on the city's street graph."""

    def leg(self, start: Point, end: Point) -> Leg:
        """The drive from ``start`` to ``end`` (never fails: an unroutable pair gets a straight line)."""
        ...


class TelemetrySink(Protocol):
    """Where reports go (the Kinesis publisher's bounded queue)."""

    def offer(self, report: Report) -> bool:
        """Queue a report; False when it was dropped (full queue and not essential)."""
        ...


class Inbox(Protocol):
    """The consumer's unit of work: only the idempotency marker is stored; the in-memory change to the
    fleet runs after the commit, so a duplicate (the commit raises) changes nothing."""

    def mark_consumed(self, event: CloudEvent) -> None: ...

    def after_commit(self, action: Callable[[], None]) -> None: ...

    def commit(self) -> None:
        """Raises ``acr.unit_of_work.Duplicate`` when the event was already consumed."""
        ...
