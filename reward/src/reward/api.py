"""HTTP routes of the reward service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from acr.guards import admit
from acr.service import service_state
from reward.ports import LoyaltyView

router = APIRouter(prefix="/v1", dependencies=[admit("bff")])


@dataclass(frozen=True)
class Reward:
    """What the routes use."""

    loyalty: LoyaltyView


State = Annotated[Reward, Depends(service_state)]


class LoyaltyOut(BaseModel):
    riderId: str  # noqa: N815 - API field names are camelCase
    rideCount: int  # noqa: N815
    points: int
    tier: str
    rating: float


@router.get("/riders/{rider_id}", response_model=LoyaltyOut)
def get_loyalty(rider_id: str, state: State) -> LoyaltyOut:
    loyalty = state.loyalty.get(rider_id)
    return LoyaltyOut(
        riderId=loyalty.rider_id,
        rideCount=loyalty.ride_count,
        points=loyalty.points,
        tier=loyalty.tier,
        rating=loyalty.rating,
    )
