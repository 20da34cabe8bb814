"""The reward ports' contract, run against the in-memory fakes AND the DynamoDB adapters (in-process moto):
what the consumer relies on — conditions, markers, events recorded only on commit — holds for both, and so
does the rider-stats read model's: copies written only over an older sequence, the live ones to every copy
the pointer names, the replayed ones to the copy a rebuild fills only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from reward_fakes import MemoryRewardUnitOfWork, MemoryRiderStats, MemoryStatsUnitOfWork, RewardStore

from acr import catalog
from acr.catalog.payment import PaymentPurpose, PaymentSucceeded
from acr.catalog.reward import RiderTierChanged, Tier
from acr.consumer import Stale
from acr.money import Money
from acr.projection_store import DynamoCopies, DynamoPointers, copies_written
from acr.projections import Pointer, Projection, ProjectionState
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import in_process_messaging, published
from reward.adapters.dynamo import (
    DynamoRewardUnitOfWork,
    DynamoRiderStats,
    DynamoStatsUnitOfWork,
)
from reward.domain import Loyalty, Standing
from reward.ports import RiderStats, StatsUnitOfWork, UnitOfWork
from reward.projection import RIDER_STATS_PROJECTION
from reward.topology import PROJECTIONS, RIDER_STATS, TOPOLOGY


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    published: Callable[[], list[str]]
    live_stats: Callable[[], StatsUnitOfWork]
    """The live consumer's unit of work: it writes to every copy the pointer names."""
    replayed_stats: Callable[[], StatsUnitOfWork]
    """The rebuild queue's: it writes to the copy a rebuild fills only."""
    stats: RiderStats
    start_rebuild: Callable[[], None]
    """Create generation 1 and name it on the pointer as the copy being filled."""
    switch: Callable[[], None]
    """Read generation 1 from now on."""

    def loyalty(self, rider_id: str) -> Loyalty:
        return self.unit_of_work().riders.get(rider_id)


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        store = RewardStore()

        def written() -> tuple[int, ...]:
            building = () if store.building is None else (store.building,)
            return (store.read_generation, *building)

        def start_rebuild() -> None:
            store.stats[1], store.building = {}, 1

        def switch() -> None:
            store.read_generation, store.building = 1, None

        yield Backend(
            lambda: MemoryRewardUnitOfWork(store),
            lambda: [catalog.CATALOG[o.event.type].name for o in store.outbox],
            lambda: MemoryStatsUnitOfWork(store, written()),
            lambda: MemoryStatsUnitOfWork(store, () if store.building is None else (store.building,)),
            MemoryRiderStats(store),
            start_rebuild,
            switch,
        )
        return
    with in_process_messaging(TOPOLOGY) as messaging:
        pointers = DynamoPointers(messaging.dynamodb, PROJECTIONS)
        stats = Projection(RIDER_STATS_PROJECTION, pointers, ttl_s=0.0)
        declared = next(t for t in TOPOLOGY.tables if t.name == RIDER_STATS)

        def start_dynamo_rebuild() -> None:
            DynamoCopies(messaging.dynamodb, declared).create(1)
            current = pointers.read(RIDER_STATS_PROJECTION)
            building = Pointer(RIDER_STATS_PROJECTION, state=ProjectionState.REBUILDING, building=1)
            assert pointers.write(building, current) is not None

        def switch_dynamo() -> None:
            current = pointers.read(RIDER_STATS_PROJECTION)
            assert current is not None
            assert pointers.write(replace(current, generation=1, building=None), current) is not None

        yield Backend(
            lambda: DynamoRewardUnitOfWork(messaging.unit_of_work()),
            lambda: published(messaging),
            lambda: DynamoStatsUnitOfWork(
                messaging.unit_of_work(marked=False), copies_written(stats, RIDER_STATS)
            ),
            lambda: DynamoStatsUnitOfWork(
                messaging.unit_of_work(marked=False), copies_written(stats, RIDER_STATS, rebuilding=True)
            ),
            DynamoRiderStats(messaging.dynamodb, stats),
            start_dynamo_rebuild,
            switch_dynamo,
        )


def test_a_new_rider_is_saved_once_then_only_over_its_version(backend: Backend) -> None:
    assert backend.loyalty("rdr_1") == Loyalty("rdr_1")
    first = backend.unit_of_work()
    first.riders.save(Loyalty("rdr_1"), Loyalty("rdr_1", ride_count=1, points=12, version=1))
    first.commit()
    assert backend.loyalty("rdr_1") == Loyalty("rdr_1", ride_count=1, points=12, version=1)

    again = backend.unit_of_work()
    again.riders.save(Loyalty("rdr_1"), Loyalty("rdr_1", version=1))  # as if it were still new
    with pytest.raises(Conflict) as conflict:
        again.commit()
    assert conflict.value.labels == ["rider"]
    stale = backend.unit_of_work()
    stale.riders.save(Loyalty("rdr_1", version=3), Loyalty("rdr_1", version=4))
    with pytest.raises(Conflict):
        stale.commit()
    assert backend.unit_of_work().riders.get("rdr_1").version == 1


def test_a_ride_effect_is_guarded_and_a_failed_commit_writes_nothing(backend: Backend) -> None:
    uow = backend.unit_of_work()
    uow.effects.add("ride_1", "RIDE_PAID", "rdr_1")
    uow.commit()
    assert backend.unit_of_work().effects.applied("ride_1", "RIDE_PAID")
    assert not backend.unit_of_work().effects.applied("ride_1", "PAYMENT_FAILED")

    both = backend.unit_of_work()
    both.riders.save(Loyalty("rdr_1"), Loyalty("rdr_1", points=5, version=1))
    both.effects.add("ride_1", "RIDE_PAID", "rdr_1")
    both.record(
        RiderTierChanged(rider_id="rdr_1", previous_tier=Tier.BRONZE, tier=Tier.SILVER), subject="rdr_1"
    )
    with pytest.raises(Conflict) as conflict:
        both.commit()
    assert conflict.value.labels == ["ride_effect"]
    assert backend.loyalty("rdr_1") == Loyalty("rdr_1") and backend.published() == []


def test_the_last_payment_sequence_of_a_ride_is_the_highest_among_its_effects(backend: Backend) -> None:
    assert backend.unit_of_work().effects.last_sequence("ride_1") == 0
    uow = backend.unit_of_work()
    uow.effects.add("ride_1", "PAYMENT_FAILED", "rdr_1", 1)
    uow.effects.add("ride_1", "RIDE_PAID", "rdr_1", 2)
    uow.effects.add("ride_2", "RIDE_PAID", "rdr_1", 5)
    uow.effects.add("ride_3", "LATE_CANCELLATION", "rdr_1")  # an outcome without a sequence
    uow.commit()
    effects = backend.unit_of_work().effects
    assert [effects.last_sequence(r) for r in ("ride_1", "ride_2", "ride_3", "ride_4")] == [2, 5, 0, 0]
    assert effects.applied("ride_3", "LATE_CANCELLATION")


def test_a_marker_makes_a_second_delivery_a_duplicate_and_events_go_out_on_commit(backend: Backend) -> None:
    paid = PaymentSucceeded(
        ride_id="ride_1",
        rider_id="rdr_1",
        payment_id="ch_1",
        amount=Money.of("5"),
        purpose=PaymentPurpose.FARE,
    )
    event = catalog.record(paid, subject="ride_1")
    first = backend.unit_of_work()
    first.record(
        RiderTierChanged(rider_id="rdr_1", previous_tier=Tier.BRONZE, tier=Tier.SILVER), subject="rdr_1"
    )
    first.mark_consumed(event)
    done: list[str] = []
    first.after_commit(lambda: done.append("after"))
    assert backend.published() == []
    first.commit()
    assert backend.published() == ["RiderTierChanged"] and done == ["after"]

    second = backend.unit_of_work()
    second.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        second.commit()


# --- the rider-stats read model ------------------------------------------------------------------------
def _put(uow: StatsUnitOfWork, standing: Standing, sequence: int) -> None:
    uow.stats.put_if_newer(standing, sequence)
    uow.commit()


def test_a_standing_is_stored_only_over_an_older_one(backend: Backend) -> None:
    assert backend.stats.get("rdr_1") == Standing("rdr_1")  # never heard of: a new rider's standing
    silver = Standing("rdr_1", ride_count=2, points=120, tier=Tier.SILVER, rating=4.5)
    _put(backend.live_stats(), silver, 3)
    assert backend.stats.get("rdr_1") == silver
    for sequence in (3, 2):
        with pytest.raises(Stale):
            backend.live_stats().stats.put_if_newer(Standing("rdr_1", ride_count=1), sequence)
    slow = backend.live_stats()
    slow.stats.put_if_newer(Standing("rdr_1", ride_count=3), 4)
    _put(backend.live_stats(), Standing("rdr_1", ride_count=4), 5)  # a newer one lands first
    with pytest.raises(Conflict) as conflict:
        slow.commit()
    assert conflict.value.labels == ["stats"]
    assert backend.stats.get("rdr_1").ride_count == 4
    assert backend.stats.get("rdr_2") == Standing("rdr_2")


def test_a_rebuild_fills_the_fresh_copy_from_the_replay_and_the_live_stream_then_reads_switch(
    backend: Backend,
) -> None:
    before = Standing("rdr_1", ride_count=1, points=12)
    _put(backend.live_stats(), before, 1)
    _put(backend.replayed_stats(), Standing("rdr_1", ride_count=9), 9)  # outside a rebuild: nowhere
    assert backend.stats.get("rdr_1") == before
    backend.start_rebuild()
    during = Standing("rdr_2", ride_count=1, points=30)
    _put(backend.live_stats(), during, 1)  # a live standing goes to both copies
    _put(backend.replayed_stats(), before, 1)  # the archive brings back what came before, to the fresh copy
    with pytest.raises(Stale):
        backend.replayed_stats().stats.put_if_newer(during, 1)  # the live stream was first
    assert backend.stats.get("rdr_1") == before and backend.stats.get("rdr_2") == during
    backend.switch()
    assert backend.stats.get("rdr_1") == before and backend.stats.get("rdr_2") == during


def test_a_reader_whose_copy_was_dropped_reads_the_pointer_again() -> None:
    with in_process_messaging(TOPOLOGY) as messaging:
        pointers = DynamoPointers(messaging.dynamodb, PROJECTIONS)
        cached = Projection(RIDER_STATS_PROJECTION, pointers, ttl_s=3600.0)
        reader = DynamoRiderStats(messaging.dynamodb, cached)
        assert reader.get("rdr_1") == Standing("rdr_1")  # the pointer (none yet: generation 0) is cached
        copies = DynamoCopies(messaging.dynamodb, next(t for t in TOPOLOGY.tables if t.name == RIDER_STATS))
        copies.create(1)
        _put(
            DynamoStatsUnitOfWork(messaging.unit_of_work(marked=False), (f"{RIDER_STATS}-g1",)),
            Standing("rdr_1", 1, 20),
            1,
        )
        assert pointers.write(Pointer(RIDER_STATS_PROJECTION, generation=1), None) is not None
        copies.drop(0)
        assert reader.get("rdr_1") == Standing("rdr_1", 1, 20)
