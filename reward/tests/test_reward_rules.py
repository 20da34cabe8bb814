from __future__ import annotations

from decimal import Decimal

from acr.catalog.payment import PaymentFailureReason
from reward.domain import Loyalty, on_payment


def test_a_paid_fare_earns_its_floor_and_counts_a_ride() -> None:
    change = on_payment(
        Loyalty("r1", points=95, version=3), succeeded=True, purpose="FARE", amount=Decimal("7.99")
    )
    assert (change.effect, change.points_earned, change.after.points, change.after.ride_count) == (
        "RIDE_PAID",
        7,
        102,
        1,
    )
    assert change.tier_changed and (change.before.tier, change.after.tier) == ("BRONZE", "SILVER")
    assert change.after.version == 4


def test_a_fee_earns_nothing_but_lowers_the_rating_by_a_quarter() -> None:
    for succeeded in (True, False):
        change = on_payment(
            Loyalty("r1"), succeeded=succeeded, purpose="CANCELLATION_FEE", amount=Decimal("5")
        )
        assert (
            change.effect,
            change.points_earned,
            change.after.points,
            change.after.ride_count,
            change.after.rating,
        ) == ("LATE_CANCELLATION", None, 0, 0, 4.75)


def test_a_failed_fare_lowers_the_rating_by_half_never_below_zero() -> None:
    change = on_payment(Loyalty("r1"), succeeded=False, purpose="FARE", amount=Decimal("20"))
    assert (change.effect, change.points_earned, change.after.rating) == ("PAYMENT_FAILED", None, 4.5)
    low = on_payment(Loyalty("r1", rating=0.25), succeeded=False, purpose="FARE", amount=Decimal("20"))
    assert low.after.rating == 0.0 and not low.tier_changed


def test_only_a_failure_the_rider_caused_lowers_the_rating() -> None:
    system = on_payment(
        Loyalty("r1"),
        succeeded=False,
        purpose="FARE",
        amount=Decimal("20"),
        failure=PaymentFailureReason.GATEWAY_ERROR,
    )
    assert system is None
    declined = on_payment(
        Loyalty("r1"),
        succeeded=False,
        purpose="FARE",
        amount=Decimal("20"),
        failure=PaymentFailureReason.CARD_DECLINED,
    )
    assert declined is not None and declined.after.rating == 4.5
    late_fee = on_payment(
        Loyalty("r1"),
        succeeded=False,
        purpose="CANCELLATION_FEE",
        amount=Decimal("5"),
        failure=PaymentFailureReason.GATEWAY_ERROR,
    )
    assert late_fee is not None and (late_fee.effect, late_fee.after.rating) == ("LATE_CANCELLATION", 4.75)
