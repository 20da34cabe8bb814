"""The reward consumer against in-memory adapters, and the app wired with them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from reward_fakes import MemoryRewardUnitOfWork, MemoryRiderStats, MemoryStatsUnitOfWork, RewardStore

from acr import catalog
from acr.catalog.base import EventData
from acr.catalog.payment import PaymentFailed, PaymentFailureReason, PaymentPurpose, PaymentSucceeded
from acr.consumer import MessageHandler, Stale, idempotent
from acr.envelope import CloudEvent
from acr.money import Money
from acr.projections import Projections
from acr.unit_of_work import Duplicate
from acr_testkit.identity import settings_for, signed
from acr_testkit.messaging import FakeMessaging
from reward.bootstrap import SERVICE, Adapters, assemble
from reward.domain import Loyalty
from reward.handlers import HANDLERS

FARE = PaymentPurpose.FARE
FEE = PaymentPurpose.CANCELLATION_FEE


def succeeded(
    ride_id: str, amount: str, purpose: PaymentPurpose = FARE, sequence: int | None = None
) -> tuple[CloudEvent, EventData]:
    data = PaymentSucceeded(
        ride_id=ride_id,
        rider_id="rdr_1",
        payment_id=f"ch_{ride_id}",
        amount=Money.of(amount),
        purpose=purpose,
    )
    return catalog.record(data, subject=ride_id, sequence=sequence), data


def failed(
    ride_id: str,
    amount: str,
    purpose: PaymentPurpose = FARE,
    sequence: int | None = None,
    reason: PaymentFailureReason = PaymentFailureReason.CARD_DECLINED,
) -> tuple[CloudEvent, EventData]:
    data = PaymentFailed(
        ride_id=ride_id,
        rider_id="rdr_1",
        payment_id=f"pay_{ride_id}",
        amount=Money.of(amount),
        purpose=purpose,
        reason=reason,
    )
    return catalog.record(data, subject=ride_id, sequence=sequence), data


def consumer(store: RewardStore) -> MessageHandler:
    return idempotent(lambda: MemoryRewardUnitOfWork(store), HANDLERS)


def _outbox(store: RewardStore) -> list[tuple[str, dict[str, object]]]:
    return [(o.event.type.rsplit(".", 1)[1], o.event.data) for o in store.outbox]


def _standings(store: RewardStore) -> list[tuple[int | None, dict[str, object]]]:
    """The ``RiderStandingChanged`` recorded: each one's sequence and data."""
    return [
        (o.event.sequence, o.event.data) for o in store.outbox if o.event.type.endswith("StandingChanged")
    ]


def _others(store: RewardStore) -> list[tuple[str, dict[str, object]]]:
    return [(kind, data) for kind, data in _outbox(store) if kind != "RiderStandingChanged"]


def test_a_paid_fare_earns_points_and_announces_them() -> None:
    store = RewardStore()
    consumer(store)(*succeeded("ride_1", "23.99"))
    loyalty = store.riders["rdr_1"]
    assert (loyalty.ride_count, loyalty.points, loyalty.tier, loyalty.rating) == (1, 23, "BRONZE", 5.0)
    assert _outbox(store) == [
        ("RewardPointsEarned", {"rideId": "ride_1", "riderId": "rdr_1", "points": 23, "totalPoints": 23}),
        (
            "RiderStandingChanged",
            {"riderId": "rdr_1", "rideCount": 1, "points": 23, "tier": "BRONZE", "rating": 5.0},
        ),
    ]
    assert store.outbox[1].event.subject == "rdr_1" and store.outbox[1].event.sequence == 1


def test_crossing_a_threshold_announces_the_tier_change() -> None:
    store = RewardStore(riders={"rdr_1": Loyalty("rdr_1", ride_count=20, points=490, version=20)})
    consumer(store)(*succeeded("ride_21", "10.20"))
    assert [k for k, _ in _outbox(store)] == [
        "RewardPointsEarned",
        "RiderTierChanged",
        "RiderStandingChanged",
    ]
    assert _outbox(store)[1][1] == {"riderId": "rdr_1", "previousTier": "SILVER", "tier": "GOLD"}
    assert store.riders["rdr_1"].tier == "GOLD"
    # all carry the rider loyalty's new version: the aggregate that changed, in the order it changed
    assert [o.event.sequence for o in store.outbox] == [21, 21, 21]


def test_a_ride_earns_points_once_under_redelivery_and_a_second_success() -> None:
    store = RewardStore()
    handle = consumer(store)
    event, data = succeeded("ride_1", "30.00")
    handle(event, data)
    with pytest.raises(Duplicate):
        handle(event.resent(), data)
    handle(*succeeded("ride_1", "30.00"))  # a new event id, the same ride
    assert (store.riders["rdr_1"].points, store.riders["rdr_1"].ride_count) == (30, 1)
    assert len(store.outbox) == 2 and len(store.markers) == 2  # the points and the standing, once


def test_a_fee_earns_no_points_and_lowers_the_rating_once() -> None:
    store = RewardStore()
    handle = consumer(store)
    handle(*failed("ride_1", "5.00", FEE))
    handle(*succeeded("ride_1", "5.00", FEE))  # operator retry of the fee
    loyalty = store.riders["rdr_1"]
    assert (loyalty.ride_count, loyalty.points, loyalty.rating) == (0, 0, 4.75)
    assert _others(store) == []
    assert _standings(store) == [
        (1, {"riderId": "rdr_1", "rideCount": 0, "points": 0, "tier": "BRONZE", "rating": 4.75})
    ]


def test_a_failed_fare_lowers_the_rating_and_a_retried_success_then_earns_points() -> None:
    store = RewardStore()
    handle = consumer(store)
    handle(*failed("ride_1", "12.00"))
    assert (store.riders["rdr_1"].rating, store.riders["rdr_1"].points, _others(store)) == (4.5, 0, [])
    handle(*succeeded("ride_1", "12.00"))
    loyalty = store.riders["rdr_1"]
    assert (loyalty.rating, loyalty.points, loyalty.ride_count) == (4.5, 12, 1)


def test_a_late_payment_failed_with_a_lower_sequence_after_a_success_is_harmless() -> None:
    store = RewardStore()
    handle = consumer(store)
    handle(*failed("ride_0", "8.00", sequence=1))  # another ride: the staleness is per ride
    handle(*succeeded("ride_1", "12.00", sequence=2))
    before = store.riders["rdr_1"]
    with pytest.raises(Stale):
        handle(*failed("ride_1", "12.00", sequence=1))
    assert store.riders["rdr_1"] == before and (before.rating, before.points) == (4.5, 12)
    assert len(store.markers) == 2 and [k for k, _ in _others(store)] == ["RewardPointsEarned"]
    assert [sequence for sequence, _ in _standings(store)] == [1, 2]  # none for the stale outcome
    handle(*failed("ride_1", "12.00", sequence=3))  # a newer decline is not stale: its effect applies once
    assert store.riders["rdr_1"].rating == 4.0


def test_a_payment_that_failed_by_the_systems_fault_never_lowers_the_rating() -> None:
    store = RewardStore()
    handle = consumer(store)
    handle(*failed("ride_1", "12.00", sequence=1, reason=PaymentFailureReason.GATEWAY_ERROR))
    assert "rdr_1" not in store.riders and store.effects == {} and len(store.markers) == 1
    assert store.outbox == []  # no change, no standing
    handle(*succeeded("ride_1", "12.00", sequence=2))
    loyalty = store.riders["rdr_1"]
    assert (loyalty.rating, loyalty.points, loyalty.ride_count) == (5.0, 12, 1)


def test_a_payment_failed_recorded_before_reasons_were_typed_is_read_by_its_words() -> None:
    def legacy(reason: str) -> tuple[CloudEvent, EventData]:
        event, _ = failed("ride_legacy", "9.00")
        old = event.model_copy(update={"data": {**event.data, "reason": reason}})
        return old, catalog.decode(old)

    store = RewardStore()
    event, data = legacy("the gateway did not answer within 1 s")
    assert isinstance(data, PaymentFailed) and data.reason == PaymentFailureReason.GATEWAY_ERROR
    consumer(store)(event, data)
    assert "rdr_1" not in store.riders
    event, data = legacy("card declined by the issuer")
    assert isinstance(data, PaymentFailed) and data.reason == PaymentFailureReason.CARD_DECLINED
    consumer(store)(event, data)
    assert store.riders["rdr_1"].rating == 4.5
    assert data.model_dump(mode="json", by_alias=True)["reason"] == "CARD_DECLINED"


def test_a_lost_race_on_the_rider_is_handled_again_on_the_new_state() -> None:
    store = RewardStore()
    sneaked = {"done": False}

    def another_consumer_wins() -> None:
        if not sneaked["done"]:
            sneaked["done"] = True
            consumer(store)(*succeeded("ride_a", "10.00"))

    handle = idempotent(lambda: MemoryRewardUnitOfWork(store, another_consumer_wins), HANDLERS)
    handle(*succeeded("ride_b", "20.00"))
    assert (store.riders["rdr_1"].points, store.riders["rdr_1"].ride_count) == (30, 2)
    assert len(store.markers) == 2


def test_the_wired_app_consumes_payments_and_serves_the_standing_from_the_rider_stats() -> None:
    store, messaging = RewardStore(), FakeMessaging()

    def wire(runtime):  # type: ignore[no-untyped-def]
        adapters = Adapters(
            messaging,
            lambda: MemoryRewardUnitOfWork(store),
            lambda: MemoryStatsUnitOfWork(store),
            lambda: MemoryStatsUnitOfWork(store, ()),
            MemoryRiderStats(store),
            Projections(),
        )
        return assemble(runtime, adapters)

    app = SERVICE.app(settings=settings_for("reward"), wire=wire)
    with signed(TestClient(app), "bff", "reward") as client:
        _, paid = succeeded("ride_1", "120.00")
        messaging.deliver("events", paid, subject="ride_1")
        new_rider = {"riderId": "rdr_1", "rideCount": 0, "points": 0, "tier": "BRONZE", "rating": 5.0}
        assert client.get("/v1/riders/rdr_1").json() == new_rider  # the read model has not heard yet
        for outbox in store.outbox:  # the relay, then the acr-reward bus's rule to the stats queue
            if outbox.event.type.endswith("RiderStandingChanged"):
                messaging.consumers["stats"](outbox.event, catalog.decode(outbox.event))
        assert client.get("/v1/riders/rdr_1").json() == {
            "riderId": "rdr_1",
            "rideCount": 1,
            "points": 120,
            "tier": "SILVER",
            "rating": 5.0,
        }
        assert client.get("/v1/riders/new").json() == new_rider | {"riderId": "new"}
        assert client.get("/healthz").json()["service"] == "reward"
