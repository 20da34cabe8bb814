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
    """Which effects each ride already had on its rider (a ride earns points at most once)."""

    def applied(self, ride_id: str, effect: Effect) -> bool: ...

    def add(self, ride_id: str, effect: Effect, rider_id: str) -> None:
        """Stage the guard (fails the commit with label ``ride_effect`` if it exists)."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def riders(self) -> Riders: ...

    @property
    def effects(self) -> RideEffects: ...
