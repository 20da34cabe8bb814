"""Loyalty rules (docs/api.md): points = floor of each captured ride fare; tiers by points; rating 0-5.

What a payment outcome does to a rider (``on_payment``):
- a captured ride fare: one more ride, floor(fare) more points (fees earn none);
- a cancellation fee (late cancellation, charged or not): rating -0.25;
- a ride fare the rider's card failed (``RIDER_CAUSED``): rating -0.5 (never below 0), no points;
- a ride fare that failed by the system's fault: nothing.
Each effect applies at most once per ride (``effect`` names it), whatever the number of deliveries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from acr.catalog.payment import PaymentFailureReason, PaymentPurpose
from acr.catalog.reward import Tier

TIERS: tuple[tuple[Tier, int], ...] = (
    (Tier.PLATINUM, 2000),
    (Tier.GOLD, 500),
    (Tier.SILVER, 100),
    (Tier.BRONZE, 0),
)
MAX_RATING = 5.0
LATE_CANCELLATION_PENALTY = 0.25
FAILED_PAYMENT_PENALTY = 0.5

RIDER_CAUSED = frozenset({PaymentFailureReason.CARD_DECLINED})

Effect = Literal["RIDE_PAID", "LATE_CANCELLATION", "PAYMENT_FAILED"]


def tier_for(points: int) -> Tier:
    """The highest tier whose threshold ``points`` reaches."""
    return next(name for name, threshold in TIERS if points >= threshold)


@dataclass(frozen=True)
class Loyalty:
    """A rider's standing."""

    rider_id: str
    ride_count: int = 0
    points: int = 0
    rating: float = MAX_RATING
    version: int = 0

    @property
    def tier(self) -> Tier:
        return tier_for(self.points)

    def earn_for_ride(self, fare: Decimal) -> Loyalty:
        """A paid ride fare: one more ride, floor(fare) more points."""
        return replace(
            self,
            ride_count=self.ride_count + 1,
            points=self.points + math.floor(fare),
            version=self.version + 1,
        )

    def lower_rating(self, by: float) -> Loyalty:
        return replace(self, rating=max(0.0, round(self.rating - by, 2)), version=self.version + 1)


@dataclass(frozen=True)
class Standing:
    """A rider's standing as the rider-stats read model shows it; a rider it has not heard of has the
    default one (what a new rider's loyalty would be)."""

    rider_id: str
    ride_count: int = 0
    points: int = 0
    tier: Tier = Tier.BRONZE
    rating: float = MAX_RATING


@dataclass(frozen=True)
class Change:
    """The effect of one payment outcome on one rider."""

    effect: Effect
    before: Loyalty
    after: Loyalty
    points_earned: int | None = None

    @property
    def tier_changed(self) -> bool:
        return self.before.tier != self.after.tier


def on_payment(
    loyalty: Loyalty,
    *,
    succeeded: bool,
    purpose: PaymentPurpose,
    amount: Decimal,
    failure: PaymentFailureReason = PaymentFailureReason.CARD_DECLINED,
) -> Change | None:
    """What a payment outcome does to ``loyalty`` (``failure``: why it failed, when it did); None when it
    does nothing (a fare that failed by the system's fault)."""
    if purpose == PaymentPurpose.CANCELLATION_FEE:
        return Change("LATE_CANCELLATION", loyalty, loyalty.lower_rating(LATE_CANCELLATION_PENALTY))
    if not succeeded:
        if failure not in RIDER_CAUSED:
            return None
        return Change("PAYMENT_FAILED", loyalty, loyalty.lower_rating(FAILED_PAYMENT_PENALTY))
    after = loyalty.earn_for_ride(amount)
    return Change("RIDE_PAID", loyalty, after, points_earned=after.points - loyalty.points)
