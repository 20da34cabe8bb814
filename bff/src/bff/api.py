"""The rider API ``/api/v1`` (docs/api.md): thin routes over the ports."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from acr.contract import BBOX, VISIBLE_TEXT, errors
from bff.auth import MAX_NAME, new_rider_id, normalize_name
from bff.consistency import (
    CONSISTENCY_HEADER,
    Written,
    page_shows,
    poll_until,
    ride_shows,
    token_of,
    written_from_token,
)
from bff.errors import (
    ADDRESS_NOT_FOUND,
    BOOKING_REFUSED,
    INVALID_CURSOR,
    NO_CAR_AVAILABLE,
    NOT_CANCELLABLE,
    OUTSIDE_SERVICE_AREA,
    QUOTE_NOT_FOUND,
    TOO_MANY_ACTIVE_RIDES,
    BadConsistencyToken,
    IdempotencyKeyRequired,
    RateLimited,
    RideNotFound,
    ServiceUnavailable,
    Unauthorized,
    UpstreamError,
)
from bff.security import CurrentRider, Deps, State, client_key, limit

router = APIRouter(prefix="/api/v1")

ConsistencyToken = Annotated[str | None, Header(alias=CONSISTENCY_HEADER)]
SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MAX_IDEMPOTENCY_KEY = 128
MAX_ADDRESS_ID = MAX_QUOTE_ID = 64  # ride-manager's and address-finder's bounds
# What every rider call may be refused with: no valid token, over its rate, a service that does not answer.
RIDER_CALL = (Unauthorized, RateLimited, ServiceUnavailable)
NEW_RIDER_LOYALTY = {"rideCount": 0, "points": 0, "tier": "BRONZE", "rating": 5.0}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewRider(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=VISIBLE_TEXT)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_name(value)


class RiderCreated(BaseModel):
    riderId: str  # noqa: N815 - API field names are camelCase
    token: str


class Me(BaseModel):
    riderId: str  # noqa: N815
    name: str
    rideCount: int  # noqa: N815
    points: int
    tier: str
    rating: float


class AddressPlace(Strict):
    addressId: str = Field(min_length=1, max_length=MAX_ADDRESS_ID)  # noqa: N815


class PointPlace(Strict):
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


Place = AddressPlace | PointPlace


class QuoteRequest(Strict):
    pickup: Place
    dropoff: Place


class BookRide(Strict):
    quoteId: str = Field(min_length=1, max_length=MAX_QUOTE_ID)  # noqa: N815


def ride_id_or_404(ride_id: str) -> str:
    """Ride ids are opaque but never need more than ``SAFE_ID``; anything else is not a ride of ours."""
    if not SAFE_ID.fullmatch(ride_id):
        raise RideNotFound("no such ride")
    return ride_id


def parse_bbox(raw: str) -> str:
    """A view's box (four numbers, ``BBOX``) as ``minLon,minLat,maxLon,maxLat``: corners given in any
    order are the same box."""
    lon1, lat1, lon2, lat2 = (float(part) for part in raw.split(","))
    return ",".join(repr(v) for v in (min(lon1, lon2), min(lat1, lat2), max(lon1, lon2), max(lat1, lat2)))


def last_write(state: State, rider_id: str, token: str | None) -> Written | None:
    """What the caller wrote last: its consistency token (written through any replica), else what this
    replica remembers of it."""
    try:
        written = written_from_token(token, rider_id, 0.0) if token is not None else None
    except ValueError as exc:
        raise BadConsistencyToken(str(exc)) from exc
    return written or state.writes.pending(rider_id)


def answer_write(state: State, rider_id: str, ride: dict[str, Any], response: Response) -> dict[str, Any]:
    """Remember a write here, and hand its consistency token to the client for its next reads."""
    state.writes.record(rider_id, ride)
    token = token_of(ride)
    if token is not None:
        response.headers[CONSISTENCY_HEADER] = token
    return ride


@router.post(
    "/riders", status_code=201, response_model=RiderCreated, tags=["riders"], responses=errors(RateLimited)
)
async def create_rider(body: NewRider, state: State, request: Request) -> RiderCreated:
    """Register a rider and hand back its signed token."""
    limit(state.signup_limiter, client_key(request))
    rider_id = new_rider_id()
    return RiderCreated(riderId=rider_id, token=state.signer.issue(rider_id, body.name))


@router.get("/riders/me", response_model=Me, tags=["riders"], responses=errors(*RIDER_CALL))
async def get_me(rider: CurrentRider, deps: Deps) -> Me:
    """The caller's name (from its token) and loyalty (from reward)."""
    try:
        loyalty: dict[str, Any] = await deps.loyalty.rider(rider.rider_id)
    except UpstreamError as exc:
        if exc.status != 404:
            raise
        loyalty = {}
    fields = {k: loyalty.get(k, default) for k, default in NEW_RIDER_LOYALTY.items()}
    return Me(riderId=rider.rider_id, name=rider.name, **fields)


@router.get("/addresses/autocomplete", tags=["addresses"], responses=errors(*RIDER_CALL))
async def autocomplete(
    _: CurrentRider,
    deps: Deps,
    q: Annotated[str, Query(min_length=1, max_length=200, pattern=VISIBLE_TEXT)],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    """Addresses matching ``q``, best first."""
    return await deps.addresses.autocomplete(q, limit)


@router.get("/addresses/reverse", tags=["addresses"], responses=errors(*RIDER_CALL, OUTSIDE_SERVICE_AREA))
async def reverse(
    _: CurrentRider,
    deps: Deps,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
) -> dict[str, Any]:
    """The address nearest to a point."""
    return await deps.addresses.reverse(lat, lon)


@router.get("/map", tags=["addresses"], responses=errors(*RIDER_CALL))
async def city_map(
    _: CurrentRider,
    deps: Deps,
    bbox: Annotated[str, Query(max_length=200, pattern=BBOX)],
    zoom: Annotated[int, Query(ge=0, le=22)],
) -> dict[str, Any]:
    """Simplified streets in a view, and the city's bounds."""
    return await deps.addresses.map(parse_bbox(bbox), zoom)


@router.post(
    "/quotes",
    status_code=201,
    tags=["rides"],
    responses=errors(*RIDER_CALL, ADDRESS_NOT_FOUND, NO_CAR_AVAILABLE, OUTSIDE_SERVICE_AREA),
)
async def create_quote(body: QuoteRequest, rider: CurrentRider, deps: Deps) -> dict[str, Any]:
    """Price a trip and the pickup ETA of the nearest car (reserves nothing)."""
    return await deps.ride_manager.quote(rider.rider_id, body.pickup.model_dump(), body.dropoff.model_dump())


@router.post(
    "/rides",
    status_code=202,
    tags=["rides"],
    responses=errors(
        *RIDER_CALL, IdempotencyKeyRequired, QUOTE_NOT_FOUND, *BOOKING_REFUSED, TOO_MANY_ACTIVE_RIDES
    ),
)
async def book_ride(
    body: BookRide,
    rider: CurrentRider,
    state: State,
    response: Response,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=MAX_IDEMPOTENCY_KEY)],
) -> dict[str, Any]:
    """Book the ride of a quote, once per Idempotency-Key (without one: 400 ``idempotency_key_required``)."""
    ride = await state.deps.ride_manager.book(rider.rider_id, body.quoteId, idempotency_key)
    return answer_write(state, rider.rider_id, ride, response)


@router.get("/rides", tags=["rides"], responses=errors(*RIDER_CALL, BadConsistencyToken, INVALID_CURSOR))
async def list_rides(
    rider: CurrentRider,
    state: State,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
    consistency: ConsistencyToken = None,
) -> dict[str, Any]:
    """The caller's rides, newest first; waits up to ~2 s for its own latest write to show."""
    rider_id = rider.rider_id
    written = last_write(state, rider_id, consistency) if cursor is None else None

    async def fetch() -> dict[str, Any]:
        return await state.deps.ride_manager.rides(rider_id, limit, cursor)

    if written is None:
        return await fetch()
    page, shown = await poll_until(fetch, lambda p: page_shows(p, written))
    if shown:
        state.writes.settle(rider_id, written)
    return page


@router.get(
    "/rides/{ride_id}", tags=["rides"], responses=errors(*RIDER_CALL, BadConsistencyToken, RideNotFound)
)
async def get_ride(
    ride_id: str, rider: CurrentRider, state: State, consistency: ConsistencyToken = None
) -> dict[str, Any]:
    """One of the caller's rides, at least as new as the caller's own last write to it."""
    ride_id = ride_id_or_404(ride_id)
    written = last_write(state, rider.rider_id, consistency)

    async def fetch() -> dict[str, Any]:
        return await state.deps.ride_manager.ride(rider.rider_id, ride_id)

    ride, _ = await poll_until(fetch, lambda r: ride_shows(r, written))
    return ride


@router.post(
    "/rides/{ride_id}/cancel",
    status_code=202,
    tags=["rides"],
    responses=errors(*RIDER_CALL, RideNotFound, NOT_CANCELLABLE),
)
async def cancel_ride(ride_id: str, rider: CurrentRider, state: State, response: Response) -> dict[str, Any]:
    """Cancel one of the caller's rides (a fee applies once the car has arrived)."""
    ride = await state.deps.ride_manager.cancel(rider.rider_id, ride_id_or_404(ride_id))
    return answer_write(state, rider.rider_id, ride, response)
