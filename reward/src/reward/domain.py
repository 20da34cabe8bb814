"""Loyalty rules (API.md): points = floor of each captured ride fare; tiers by points; rating 0-5."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal

TIERS: tuple[tuple[str, int], ...] = (("PLATINUM", 2000), ("GOLD", 500), ("SILVER", 100), ("BRONZE", 0))
MAX_RATING = 5.0


def tier_for(points: int) -> str:
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
    def tier(self) -> str:
        return tier_for(self.points)

    def earn_for_ride(self, fare: Decimal) -> Loyalty:
        """A paid ride fare: one more ride, floor(fare) more points."""
        return replace(self, ride_count=self.ride_count + 1, points=self.points + math.floor(fare),
                       version=self.version + 1)

    def lower_rating(self, by: float) -> Loyalty:
        return replace(self, rating=max(0.0, round(self.rating - by, 2)), version=self.version + 1)
