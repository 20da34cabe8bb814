"""What the reward context needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from acr import unit_of_work
from reward.domain import Effect, Loyalty


class LoyaltyView(Protocol):
    def get(self, rider_id: str) -> Loyalty: ...


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
