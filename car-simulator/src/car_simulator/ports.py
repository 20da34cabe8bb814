"""What the car edge needs from the outside world."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from acr import unit_of_work
from car_simulator.domain import CarCommand, Leg, Point, Snapshot
from car_simulator.simulation import Report


class GroupLease(Protocol):
    """The lease of a car group held by this replica (an ``acr.leases.Lease``): its driver's writes carry
    its owner and fencing token, so they fail once another replica took the group."""

    @property
    def key(self) -> str: ...

    @property
    def owner(self) -> str: ...

    @property
    def token(self) -> int: ...

    @property
    def expires_at(self) -> float: ...


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
    """The cars' stored rows, as a command changes them (in the unit of work that applies it)."""

    def save(self, snapshot: Snapshot) -> None:
        """Stage the car's whole row (assignment and legs included) at ``snapshot.car.version``; the commit
        fails with label ``car`` unless the stored row is at the version before, or there is none."""
        ...


class CommandRows(Protocol):
    """The groups' mailboxes, in a unit of work."""

    def post(self, command: CarCommand) -> None:
        """Stage ``command`` at the end of its group's mailbox."""
        ...

    def done(self, command: CarCommand) -> None:
        """Stage the removal of ``command``, which must be the first of its group's mailbox (the commit
        fails with label ``command`` otherwise: it was applied already)."""
        ...


class Mailbox(Protocol):
    """The groups' mailboxes outside a unit of work."""

    def pending(self, groups: Iterable[str]) -> dict[str, list[CarCommand]]:
        """The commands not applied yet of each of these groups that has some, oldest first (one read for
        all the groups a replica holds)."""
        ...

    def post(self, command: CarCommand) -> None:
        """Append ``command`` to its group's mailbox now (an operator's call: no message to mark)."""
        ...


class CarStore(Protocol):
    """The cars' stored rows outside a unit of work: read when a group is gained, progress saved while
    the cars drive."""

    def load(self, car_ids: Iterable[str]) -> list[Snapshot]:
        """These cars as they were last saved (a car without a row is left out)."""
        ...

    def load_all(self) -> list[Snapshot]:
        """Every stored car (for the routes that show the whole fleet)."""
        ...

    def save_progress(self, snapshot: Snapshot, lease: GroupLease) -> bool:
        """Write the car's phase, ride, progress on its leg and position, unless the stored row is at
        another version (a newer command's row: False, nothing written). Raises ``Fenced`` when ``lease``
        (the car's group) is no longer this replica's. The assignment is written only by commands, and
        removed with the ride once the car has none."""
        ...


class Fenced(Exception):
    """A write was refused: the group's lease is no longer held with that token (another replica took it)."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """A consumer's unit of work posts commands (with the message's marker); the applier's stores what a
    command did to the car and removes it from the mailbox, fenced by the group's lease."""

    @property
    def cars(self) -> CarRows: ...

    @property
    def commands(self) -> CommandRows: ...

    def fence(self, lease: GroupLease) -> None:
        """Commit only while ``lease`` is held with its token (fails with label ``lease`` otherwise)."""
        ...
