"""In-memory adapters of the reward ports, with the DynamoDB ones' conditions (for fast tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from acr.consumer import Stale
from acr.ordering import Order, order
from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from reward.domain import Effect, Loyalty, Standing


@dataclass
class RewardStore(MessageStore):
    riders: dict[str, Loyalty] = field(default_factory=dict)
    effects: dict[tuple[str, str], int | None] = field(default_factory=dict)  # the payment sequence of each
    stats: dict[int, dict[str, tuple[Standing, int]]] = field(default_factory=lambda: {0: {}})
    """The rider-stats copies by generation: each rider's standing and its sequence."""
    read_generation: int = 0
    building: int | None = None
    """The pointer: the copy read, and the one a rebuild fills."""


class MemoryRiderStats:
    """The read side: the copy ``read_generation`` names."""

    def __init__(self, store: RewardStore) -> None:
        self._store = store

    def get(self, rider_id: str) -> Standing:
        row = self._store.stats[self._store.read_generation].get(rider_id)
        return row[0] if row else Standing(rider_id)


class MemoryStatsRows:
    def __init__(self, uow: MemoryStatsUnitOfWork, generations: tuple[int, ...]) -> None:
        self._uow = uow
        self._generations = generations

    def put_if_newer(self, standing: Standing, sequence: int) -> None:
        copies = [self._uow.store.stats[g] for g in self._generations]
        newer = [
            c for c in copies if order(_stored(c, standing.rider_id), sequence, gapless=False) is Order.APPLY
        ]
        if copies and not newer:
            raise Stale(f"standing of {standing.rider_id} #{sequence} is not newer than the projection")
        for copy in newer:

            def check(copy: dict[str, tuple[Standing, int]] = copy) -> str | None:
                return "stats" if _stored(copy, standing.rider_id) >= sequence else None

            self._uow.stage(
                check, lambda copy=copy: copy.__setitem__(standing.rider_id, (standing, sequence))
            )


def _stored(copy: dict[str, tuple[Standing, int]], rider_id: str) -> int:
    row = copy.get(rider_id)
    return row[1] if row else 0


class MemoryStatsUnitOfWork(MemoryUnitOfWork):
    """The rider-stats projector's unit of work in memory: no markers; it writes to ``generations``."""

    def __init__(
        self,
        store: RewardStore,
        generations: tuple[int, ...] = (0,),
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(store, before_commit, marked=False)
        self.store = store
        self.stats = MemoryStatsRows(self, generations)


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
