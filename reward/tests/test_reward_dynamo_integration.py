"""The reward DynamoDB adapters against an emulator (moto server, or LocalStack when Docker answers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acr import aws, catalog
from acr.catalog import PaymentFailed, PaymentSucceeded
from acr.money import Money
from acr.runtime import Messaging
from acr.settings import Settings
from acr.testing.emulator import aws_emulator
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr.unit_of_work import Conflict, Duplicate
from reward.adapters.dynamo import DynamoLoyaltyView, DynamoRewardUnitOfWork
from reward.domain import Loyalty
from reward.handlers import consumer
from reward.topology import TOPOLOGY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def messaging() -> Iterator[Messaging]:
    with aws_emulator() as url:
        settings = Settings(aws_endpoint_url=url, sqs_wait_s=1)
        apply(discover(), Clients(lambda name: aws.client(name, settings)))
        yield Messaging(TOPOLOGY, settings)


def test_loyalty_guard_events_and_marker_commit_together(messaging: Messaging) -> None:
    def uow() -> DynamoRewardUnitOfWork:
        return DynamoRewardUnitOfWork(messaging.unit_of_work())

    handle = consumer(uow)
    view = DynamoLoyaltyView(messaging.dynamodb)
    paid = PaymentSucceeded(
        ride_id="ride_it_rw_1",
        rider_id="rdr_it",
        payment_id="ch_1",
        amount=Money.of("123.45"),
        purpose="FARE",
    )
    event = catalog.record(paid, subject="ride_it_rw_1")
    handle(event, paid)
    with pytest.raises(Duplicate):
        handle(event.resent(), paid)
    handle(catalog.record(paid, subject="ride_it_rw_1"), paid)  # a second success for the ride: no points
    fail = PaymentFailed(
        ride_id="ride_it_rw_2",
        rider_id="rdr_it",
        payment_id="pay_2",
        amount=Money.of("9.00"),
        purpose="FARE",
        reason="declined",
    )
    handle(catalog.record(fail, subject="ride_it_rw_2"), fail)

    loyalty = view.get("rdr_it")
    assert (loyalty.ride_count, loyalty.points, loyalty.tier, loyalty.rating, loyalty.version) == (
        1,
        123,
        "SILVER",
        4.5,
        2,
    )
    assert [e["type"].rsplit(".", 1)[1] for e in messaging.events_about("ride_it_rw_1")] == [
        "RewardPointsEarned"
    ]
    assert [e["type"].rsplit(".", 1)[1] for e in messaging.events_about("rdr_it")] == ["RiderTierChanged"]

    # a stale writer loses on the version condition, and a new rider's row may be created only once
    stale = uow()
    stale.riders.save(Loyalty("rdr_it", version=1), Loyalty("rdr_it", version=2))
    with pytest.raises(Conflict) as conflict:
        stale.commit()
    assert conflict.value.labels == ["rider"]
    twice = uow()
    twice.riders.save(Loyalty("rdr_it"), Loyalty("rdr_it", version=1))
    twice.effects.add("ride_it_rw_1", "RIDE_PAID", "rdr_it")
    with pytest.raises(Conflict) as both:
        twice.commit()
    assert sorted(both.value.labels) == ["ride_effect", "rider"]
