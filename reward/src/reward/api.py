"""HTTP routes of the reward service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from acr.guards import admit
from acr.service import service_state
from reward.ports import RiderStats

router = APIRouter(prefix="/v1", dependencies=[admit("bff")])


@dataclass(frozen=True)
class Reward:
    """What the routes use."""

    stats: RiderStats


State = Annotated[Reward, Depends(service_state)]


class LoyaltyOut(BaseModel):
    riderId: str  # noqa: N815 - API field names are camelCase
    rideCount: int  # noqa: N815
    points: int
    tier: str
    rating: float


@router.get("/riders/{rider_id}", response_model=LoyaltyOut)
def get_loyalty(rider_id: str, state: State) -> LoyaltyOut:
    """The rider's standing from the rider-stats read model (a rider it has not heard of: a new one's)."""
    standing = state.stats.get(rider_id)
    return LoyaltyOut(
        riderId=standing.rider_id,
        rideCount=standing.ride_count,
        points=standing.points,
        tier=standing.tier.value,
        rating=standing.rating,
    )
