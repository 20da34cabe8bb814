"""HTTP routes of the reward service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from reward.ports import LoyaltyView

router = APIRouter(prefix="/v1")


class LoyaltyOut(BaseModel):
    riderId: str  # noqa: N815 - API field names are camelCase
    rideCount: int  # noqa: N815
    points: int
    tier: str
    rating: float


def _view(request: Request) -> LoyaltyView:
    return request.app.state.loyalty  # type: ignore[no-any-return]


View = Annotated[LoyaltyView, Depends(_view)]


@router.get("/riders/{rider_id}", response_model=LoyaltyOut)
def get_loyalty(rider_id: str, view: View) -> LoyaltyOut:
    loyalty = view.get(rider_id)
    return LoyaltyOut(
        riderId=loyalty.rider_id,
        rideCount=loyalty.ride_count,
        points=loyalty.points,
        tier=loyalty.tier,
        rating=loyalty.rating,
    )
