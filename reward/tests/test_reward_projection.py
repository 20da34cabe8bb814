"""The rider-stats read model's projector against in-memory copies: a standing is applied only over an older
sequence (duplicates, stale and out-of-order ones are dropped), a live one goes to every copy written, a
replayed one only to the copy a rebuild fills, and the two streams in any order leave both copies equal."""

from __future__ import annotations

import random

import pytest
from reward_fakes import MemoryRiderStats, MemoryStatsUnitOfWork, RewardStore

from acr import catalog, clock
from acr.catalog.reward import RiderStandingChanged, Tier
from acr.consumer import MessageHandler, PoisonMessage, Stale, idempotent
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS
from reward.domain import Standing
from reward.projection import REBUILD_HANDLERS, RIDER_STATS_PROJECTION, STATS_HANDLERS


def standing(
    version: int, rider_id: str = "rdr_1", *, sequence: int | None = -1
) -> tuple[CloudEvent, RiderStandingChanged]:
    """The standing after ``version`` paid rides of 10 points (``sequence``: the version unless given)."""
    data = RiderStandingChanged(
        rider_id=rider_id, ride_count=version, points=10 * version, tier=Tier.BRONZE, rating=5.0
    )
    return catalog.record(data, subject=rider_id, sequence=version if sequence == -1 else sequence), data


def live(store: RewardStore, generations: tuple[int, ...] = (0,), before_commit=None) -> MessageHandler:  # type: ignore[no-untyped-def]
    return idempotent(lambda: MemoryStatsUnitOfWork(store, generations, before_commit), STATS_HANDLERS)


def replayed(store: RewardStore, generations: tuple[int, ...]) -> MessageHandler:
    return idempotent(lambda: MemoryStatsUnitOfWork(store, generations), REBUILD_HANDLERS)


def stored(store: RewardStore, generation: int = 0) -> dict[str, int]:
    return {rider: sequence for rider, (_, sequence) in store.stats[generation].items()}


def test_a_newer_standing_overwrites_and_the_same_or_an_older_one_is_stale() -> None:
    store = RewardStore()
    project = live(store)
    project(*standing(1))
    project(*standing(3))  # a gap is no wait: each standing is whole
    for version in (3, 2, 1):  # a duplicate and two late arrivals change nothing
        with pytest.raises(Stale):
            project(*standing(version))
    assert MemoryRiderStats(store).get("rdr_1") == Standing("rdr_1", 3, 30, Tier.BRONZE, 5.0)
    assert stored(store) == {"rdr_1": 3} and store.markers == set()  # idempotent by version: no markers
    project(*standing(1, rider_id="rdr_2"))  # each rider has its own row and sequence
    assert stored(store) == {"rdr_1": 3, "rdr_2": 1}
    assert MemoryRiderStats(store).get("rdr_new") == Standing("rdr_new")


def test_a_standing_that_lost_a_race_is_handled_again_and_found_stale() -> None:
    store = RewardStore()
    raced: list[int] = []

    def a_newer_standing_lands_first() -> None:
        if not raced:
            raced.append(5)
            live(store)(*standing(5))

    with pytest.raises(Stale):
        live(store, before_commit=a_newer_standing_lands_first)(*standing(4))
    assert stored(store) == {"rdr_1": 5}


def test_a_standing_without_a_sequence_cannot_be_ordered_and_is_poison() -> None:
    store = RewardStore()
    with pytest.raises(PoisonMessage):
        live(store)(*standing(1, sequence=None))
    assert stored(store) == {}


def test_the_lag_is_measured_when_a_live_standing_is_stored_never_for_a_replayed_one() -> None:
    store = RewardStore()
    event, data = standing(1)
    old = CloudEvent.model_validate(event.model_dump() | {"time": clock.parse("2026-01-01T00:00:00Z")})
    COUNTERS.projection_lag_ms = 0.0
    store.stats[1] = {}
    replayed(store, (1,))(old, data)
    assert COUNTERS.projection_lag_ms == 0.0  # an archived event's age is not the read model's lag
    live(store)(old, data)
    assert COUNTERS.projection_lag_ms > 1000  # the event was stamped long ago
    assert COUNTERS.projection_lag(RIDER_STATS_PROJECTION)["p50"] is not None
    COUNTERS.projection_lag_ms = 0.0
    with pytest.raises(Stale):
        live(store)(old.resent(), data)
    assert COUNTERS.projection_lag_ms == 0.0  # nothing stored, nothing measured


def test_during_a_rebuild_live_standings_go_to_both_copies_and_replayed_ones_to_the_fresh_one_only() -> None:
    store = RewardStore()
    live(store)(*standing(2))
    store.stats[1] = {}  # a rebuild created generation 1: live writes go to both
    live(store, (0, 1))(*standing(1, rider_id="rdr_2"))
    assert stored(store, 0) == {"rdr_1": 2, "rdr_2": 1} and stored(store, 1) == {"rdr_2": 1}
    replayed(store, (1,))(*standing(2))  # the archive brings back what came before
    with pytest.raises(Stale):
        replayed(store, (1,))(*standing(1, rider_id="rdr_2"))  # the live copy was there first
    assert stored(store, 0) == stored(store, 1) == {"rdr_1": 2, "rdr_2": 1}
    replayed(store, ())(*standing(9))  # a replay outside a rebuild writes nowhere
    assert stored(store, 0) == stored(store, 1) == {"rdr_1": 2, "rdr_2": 1}


@pytest.mark.parametrize("seed", range(8))
def test_the_replay_and_the_live_stream_in_any_order_leave_both_copies_at_each_riders_newest(
    seed: int,
) -> None:
    """The live consumer writes to both copies, the rebuild's only to the fresh one; the replay re-sends what
    came before in any order, and some standings reach both, so the fresh copy ends like the old one."""
    rng = random.Random(seed)
    store = RewardStore()
    store.stats[1] = {}
    events = [standing(v, rider_id=f"rdr_{r}") for r in range(3) for v in range(1, 6)]
    streams: list[tuple[MessageHandler, tuple[CloudEvent, RiderStandingChanged]]] = []
    streams += [(live(store, (0, 1)), e) for e in rng.sample(events, len(events))]
    streams += [(replayed(store, (1,)), e) for e in rng.sample(events, len(events))]
    rng.shuffle(streams)
    for handler, (event, data) in streams:
        try:
            handler(event, data)
        except Stale:
            pass
    newest = {f"rdr_{r}": 5 for r in range(3)}
    assert stored(store, 0) == stored(store, 1) == newest
