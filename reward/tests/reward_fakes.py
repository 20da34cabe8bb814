"""In-memory adapters of the reward ports, with the DynamoDB ones' conditions (for fast tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from reward.domain import Effect, Loyalty


@dataclass
class RewardStore(MessageStore):
    riders: dict[str, Loyalty] = field(default_factory=dict)
    effects: dict[tuple[str, str], int | None] = field(default_factory=dict)  # the payment sequence of each


class MemoryLoyaltyView:
    def __init__(self, store: RewardStore) -> None:
        self._store = store

    def get(self, rider_id: str) -> Loyalty:
        return self._store.riders.get(rider_id) or Loyalty(rider_id)


class MemoryRewardUnitOfWork(MemoryUnitOfWork):
    def __init__(self, store: RewardStore, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(store, before_commit)
        self.store = store
        self.riders = _Riders(self)
        self.effects = _Effects(self)


class _Riders:
    def __init__(self, uow: MemoryRewardUnitOfWork) -> None:
        self._uow = uow

    def get(self, rider_id: str) -> Loyalty:
        return self._uow.store.riders.get(rider_id) or Loyalty(rider_id)

    def save(self, before: Loyalty, after: Loyalty) -> None:
        rows = self._uow.store.riders

        def check() -> str | None:
            current = rows.get(before.rider_id)
            version = current.version if current else 0
            return None if version == before.version else "rider"

        self._uow.stage(check, lambda: rows.__setitem__(after.rider_id, after))


class _Effects:
    def __init__(self, uow: MemoryRewardUnitOfWork) -> None:
        self._uow = uow

    def applied(self, ride_id: str, effect: Effect) -> bool:
        return (ride_id, effect) in self._uow.store.effects

    def last_sequence(self, ride_id: str) -> int:
        rows = self._uow.store.effects
        return max((seq or 0 for (ride, _), seq in list(rows.items()) if ride == ride_id), default=0)

    def add(self, ride_id: str, effect: Effect, rider_id: str, sequence: int | None = None) -> None:
        rows = self._uow.store.effects
        self._uow.stage(
            lambda: "ride_effect" if (ride_id, effect) in rows else None,
            lambda: rows.__setitem__((ride_id, effect), sequence),
        )
