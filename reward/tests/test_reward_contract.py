"""The reward ports' contract, run against the in-memory fakes AND the DynamoDB adapters (in-process moto):
what the consumer relies on — conditions, markers, events recorded only on commit — holds for both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from reward_fakes import MemoryLoyaltyView, MemoryRewardUnitOfWork, RewardStore

from acr import catalog
from acr.catalog.payment import PaymentPurpose, PaymentSucceeded
from acr.catalog.reward import RiderTierChanged, Tier
from acr.money import Money
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import in_process_messaging, published
from reward.adapters.dynamo import DynamoLoyaltyView, DynamoRewardUnitOfWork
from reward.domain import Loyalty
from reward.ports import LoyaltyView, UnitOfWork
from reward.topology import TOPOLOGY


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    view: LoyaltyView
    published: Callable[[], list[str]]


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        store = RewardStore()
        yield Backend(
            lambda: MemoryRewardUnitOfWork(store),
            MemoryLoyaltyView(store),
            lambda: [catalog.CATALOG[o.event.type].name for o in store.outbox],
        )
        return
    with in_process_messaging(TOPOLOGY) as messaging:
        yield Backend(
            lambda: DynamoRewardUnitOfWork(messaging.unit_of_work()),
            DynamoLoyaltyView(messaging.dynamodb),
            lambda: published(messaging),
        )


def test_a_new_rider_is_saved_once_then_only_over_its_version(backend: Backend) -> None:
    assert backend.view.get("rdr_1") == Loyalty("rdr_1")
    first = backend.unit_of_work()
    first.riders.save(Loyalty("rdr_1"), Loyalty("rdr_1", ride_count=1, points=12, version=1))
    first.commit()
    assert backend.view.get("rdr_1") == Loyalty("rdr_1", ride_count=1, points=12, version=1)

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
    assert backend.view.get("rdr_1") == Loyalty("rdr_1") and backend.published() == []


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
