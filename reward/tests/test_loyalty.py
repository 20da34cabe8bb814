from decimal import Decimal

from reward.domain import Loyalty, tier_for


def test_new_rider_is_bronze_with_full_rating() -> None:
    loyalty = Loyalty("r1")
    assert (loyalty.ride_count, loyalty.points, loyalty.tier, loyalty.rating) == (0, 0, "BRONZE", 5.0)


def test_points_are_the_floor_of_each_fare() -> None:
    loyalty = Loyalty("r1").earn_for_ride(Decimal("23.99")).earn_for_ride(Decimal("0.50"))
    assert (loyalty.ride_count, loyalty.points) == (2, 23)


def test_tier_thresholds() -> None:
    assert [tier_for(p) for p in (0, 99, 100, 499, 500, 1999, 2000)] == [
        "BRONZE",
        "BRONZE",
        "SILVER",
        "SILVER",
        "GOLD",
        "GOLD",
        "PLATINUM",
    ]
