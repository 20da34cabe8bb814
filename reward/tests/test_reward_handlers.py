from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from acr import catalog
from acr.catalog import EventData, PaymentFailed, PaymentSucceeded
from acr.envelope import CloudEvent
from acr.money import Money
from acr.unit_of_work import Conflict, Duplicate
from reward.adapters.memory import MemoryLoyaltyView, MemoryRewardUnitOfWork, RewardStore
from reward.bootstrap import create_app
from reward.domain import Loyalty, Purpose
from reward.handlers import consumer


def succeeded(ride_id: str, amount: str, purpose: Purpose = "FARE") -> tuple[CloudEvent, EventData]:
    data = PaymentSucceeded(
        ride_id=ride_id,
        rider_id="rdr_1",
        payment_id=f"ch_{ride_id}",
        amount=Money.of(amount),
        purpose=purpose,
    )
    return catalog.record(data, subject=ride_id), data


def failed(ride_id: str, amount: str, purpose: Purpose = "FARE") -> tuple[CloudEvent, EventData]:
    data = PaymentFailed(
        ride_id=ride_id,
        rider_id="rdr_1",
        payment_id=f"pay_{ride_id}",
        amount=Money.of(amount),
        purpose=purpose,
        reason="card declined",
    )
    return catalog.record(data, subject=ride_id), data


def _outbox(store: RewardStore) -> list[tuple[str, dict[str, object]]]:
    return [(o.event.type.rsplit(".", 1)[1], o.event.data) for o in store.outbox]


def test_a_paid_fare_earns_points_and_announces_them() -> None:
    store = RewardStore()
    handle = consumer(lambda: MemoryRewardUnitOfWork(store))
    handle(*succeeded("ride_1", "23.99"))
    loyalty = store.riders["rdr_1"]
    assert (loyalty.ride_count, loyalty.points, loyalty.tier, loyalty.rating) == (1, 23, "BRONZE", 5.0)
    assert _outbox(store) == [
        ("RewardPointsEarned", {"rideId": "ride_1", "riderId": "rdr_1", "points": 23, "totalPoints": 23})
    ]


def test_crossing_a_threshold_announces_the_tier_change() -> None:
    store = RewardStore(riders={"rdr_1": Loyalty("rdr_1", ride_count=20, points=490, version=20)})
    handle = consumer(lambda: MemoryRewardUnitOfWork(store))
    handle(*succeeded("ride_21", "10.20"))
    assert [k for k, _ in _outbox(store)] == ["RewardPointsEarned", "RiderTierChanged"]
    assert _outbox(store)[1][1] == {"riderId": "rdr_1", "previousTier": "SILVER", "tier": "GOLD"}
    assert store.riders["rdr_1"].tier == "GOLD"


def test_a_ride_earns_points_once_under_redelivery_and_a_second_success() -> None:
    store = RewardStore()
    handle = consumer(lambda: MemoryRewardUnitOfWork(store))
    event, data = succeeded("ride_1", "30.00")
    handle(event, data)
    with pytest.raises(Duplicate):
        handle(event.resent(), data)
    handle(*succeeded("ride_1", "30.00"))  # a new event id, the same ride
    assert (store.riders["rdr_1"].points, store.riders["rdr_1"].ride_count) == (30, 1)
    assert len(store.outbox) == 1 and len(store.markers) == 2


def test_a_fee_earns_no_points_and_lowers_the_rating_once() -> None:
    store = RewardStore()
    handle = consumer(lambda: MemoryRewardUnitOfWork(store))
    handle(*failed("ride_1", "5.00", "CANCELLATION_FEE"))
    handle(*succeeded("ride_1", "5.00", "CANCELLATION_FEE"))  # operator retry of the fee
    loyalty = store.riders["rdr_1"]
    assert (loyalty.ride_count, loyalty.points, loyalty.rating) == (0, 0, 4.75)
    assert store.outbox == []


def test_a_failed_fare_lowers_the_rating_and_a_retried_success_then_earns_points() -> None:
    store = RewardStore()
    handle = consumer(lambda: MemoryRewardUnitOfWork(store))
    handle(*failed("ride_1", "12.00"))
    assert (store.riders["rdr_1"].rating, store.riders["rdr_1"].points, store.outbox) == (4.5, 0, [])
    handle(*succeeded("ride_1", "12.00"))
    loyalty = store.riders["rdr_1"]
    assert (loyalty.rating, loyalty.points, loyalty.ride_count) == (4.5, 12, 1)


def test_a_concurrent_change_of_the_rider_fails_the_commit_for_a_redelivery() -> None:
    store = RewardStore()
    sneaked = {"done": False}

    def another_consumer_wins() -> None:
        if not sneaked["done"]:
            sneaked["done"] = True
            consumer(lambda: MemoryRewardUnitOfWork(store))(*succeeded("ride_a", "10.00"))

    event, data = succeeded("ride_b", "20.00")
    with pytest.raises(Conflict) as conflict:
        consumer(lambda: MemoryRewardUnitOfWork(store, another_consumer_wins))(event, data)
    assert conflict.value.labels == ["rider"] and store.riders["rdr_1"].points == 10
    consumer(lambda: MemoryRewardUnitOfWork(store))(event.resent(), data)  # the redelivery
    assert (store.riders["rdr_1"].points, store.riders["rdr_1"].ride_count) == (30, 2)


def test_get_rider_over_http() -> None:
    store = RewardStore(riders={"rdr_1": Loyalty("rdr_1", ride_count=3, points=120, rating=4.5, version=4)})
    client = TestClient(create_app(MemoryLoyaltyView(store)))
    assert client.get("/v1/riders/rdr_1").json() == {
        "riderId": "rdr_1",
        "rideCount": 3,
        "points": 120,
        "tier": "SILVER",
        "rating": 4.5,
    }
    assert client.get("/v1/riders/new").json() == {
        "riderId": "new",
        "rideCount": 0,
        "points": 0,
        "tier": "BRONZE",
        "rating": 5.0,
    }
    assert client.get("/healthz").json()["service"] == "reward"
