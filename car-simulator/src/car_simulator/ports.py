"""What the car edge needs from the outside world."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from acr import unit_of_work
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


class TelemetryPublisher(Protocol):
    """Sends the reports offered to its ``buffer``, as a background loop of the service."""

    @property
    def buffer(self) -> TelemetrySink: ...

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set."""
        ...

    def wake(self) -> None:
        """Stop waiting for reports now (so the loop sees ``stop`` at once)."""
        ...

    def stats(self) -> dict[str, Any]:
        """What was sent, at what rate, and what waits (``/v1/ops/telemetry``)."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """The consumer's unit of work: only the idempotency marker is stored; the in-memory change to the
    fleet is an ``after_commit`` action, so a duplicate (the commit raises) changes nothing."""
