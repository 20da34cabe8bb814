"""What the reward context needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from acr import unit_of_work
from reward.domain import Effect, Loyalty, Standing


class RiderStats(Protocol):
    """Read side: the rider-stats read model (the copy its pointer names)."""

    def get(self, rider_id: str) -> Standing:
        """The rider's last standing, or the default one when none was applied."""
        ...


class Riders(Protocol):
    def get(self, rider_id: str) -> Loyalty: ...

    def save(self, before: Loyalty, after: Loyalty) -> None:
        """Stage ``after`` (fails the commit with label ``rider`` unless the row is at ``before.version``)."""
        ...


class RideEffects(Protocol):
    """Which effects each ride already had on its rider (a ride earns points at most once), and the
    sequence of the payment outcome that caused each."""

    def applied(self, ride_id: str, effect: Effect) -> bool: ...

    def last_sequence(self, ride_id: str) -> int:
        """The highest payment sequence among the ride's effects (0: no effect carried one)."""
        ...

    def add(self, ride_id: str, effect: Effect, rider_id: str, sequence: int | None = None) -> None:
        """Stage the guard (fails the commit with label ``ride_effect`` if it exists)."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def riders(self) -> Riders: ...

    @property
    def effects(self) -> RideEffects: ...


class StatsRows(Protocol):
    """The write side of the rider-stats read model: one row per rider, its latest standing."""

    def put_if_newer(self, standing: Standing, sequence: int) -> None:
        """Raise ``Stale`` unless ``sequence`` is newer than the stored row's in some copy written
        (``acr.ordering``); else stage the standing there (fails the commit with label ``stats`` if a row of
        its sequence or a newer one was stored meanwhile)."""
        ...


class StatsUnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def stats(self) -> StatsRows: ...
