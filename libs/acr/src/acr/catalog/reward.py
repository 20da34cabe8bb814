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


SPECS = (
    EventSpec("RewardPointsEarned", "reward", RewardPointsEarned, "create"),
    EventSpec("RiderTierChanged", "reward", RiderTierChanged, "fact"),
)
