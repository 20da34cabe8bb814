"""What the car edge needs from the outside world."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from acr import unit_of_work
from car_simulator.domain import Leg, Point, Snapshot
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


class CarRows(Protocol):
    """The cars' stored rows, as a command changes them (in the unit of work of the message)."""

    def save(self, snapshot: Snapshot) -> None:
        """Stage the car's whole row (assignment and legs included) at ``snapshot.car.version``; the commit
        fails with label ``car`` unless the stored row is at the version before, or there is none."""
        ...


class CarStore(Protocol):
    """The cars' stored rows outside a unit of work: read at start, progress saved while they drive."""

    def load(self) -> list[Snapshot]:
        """Every stored car, as it was last saved."""
        ...

    def save_progress(self, snapshot: Snapshot) -> bool:
        """Write the car's phase, ride, progress on its leg and position, unless the stored row is at
        another version (a newer command's row: False, nothing written). The assignment is written only by
        commands, and removed with the ride once the car has none."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """The consumer's unit of work: the message's marker and the commanded car's row, committed together;
    the in-memory change to the fleet is an ``after_commit`` action, so a duplicate (the commit raises)
    changes nothing."""

    @property
    def cars(self) -> CarRows: ...
