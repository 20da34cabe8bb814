"""The reward context's published language (bus ``acr-reward``, source ``acr.reward``)."""

from __future__ import annotations

from enum import StrEnum

from acr.catalog.base import EventData, EventSpec


class Tier(StrEnum):
    """Loyalty tiers, lowest first."""

    BRONZE = "BRONZE"
    SILVER = "SILVER"
    GOLD = "GOLD"
    PLATINUM = "PLATINUM"


class RewardPointsEarned(EventData):
    ride_id: str
    rider_id: str
    points: int
    total_points: int


class RiderTierChanged(EventData):
    rider_id: str
    previous_tier: Tier
    tier: Tier


class RiderStandingChanged(EventData):
    """A rider's whole standing after each change of its loyalty (``sequence``: the loyalty's version): the
    rider-stats read model is built from these alone, and rebuilt from the ``acr-reward`` archive."""

    rider_id: str
    ride_count: int
    points: int
    tier: Tier
    rating: float


SPECS = (
    EventSpec("RewardPointsEarned", "reward", RewardPointsEarned, "create"),
    EventSpec("RiderTierChanged", "reward", RiderTierChanged, "fact"),
    EventSpec("RiderStandingChanged", "reward", RiderStandingChanged, "update"),
)
