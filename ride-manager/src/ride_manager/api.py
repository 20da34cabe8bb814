"""HTTP routes of ride-manager (called by the BFF). Thin: parse, call a use case, shape the answer.

The rider is never a parameter: it is the ``sub`` of the BFF's service token (``acr.guards``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from acr.contract import errors
from acr.errors import DependencyUnavailable, ServiceError
from acr.guards import OPS, admit, for_rider
from acr.identity import Caller
from acr.service import service_state
from ride_manager import handlers
from ride_manager.commands import CancelRide, PlaceRef, RequestQuote, RequestRide
from ride_manager.domain import (
    AddressNotFound,
    Deadlines,
    IdempotencyKeyConflict,
    NoCarNearby,
    NotCancellable,
    OutsideServiceArea,
    QuoteAlreadyUsed,
    QuoteExpired,
    QuoteNotFound,
    RideNotFound,
    TooManyActiveRides,
)
from ride_manager.ports import Dispatch, Geo, RideHistory, UnitOfWork
from ride_manager.snapshot import quote_to_json, ride_to_json

BFF = admit("bff")
router = APIRouter(prefix="/v1", dependencies=[BFF])
ops_router = APIRouter(prefix="/v1/ops", dependencies=[OPS], tags=["ops"])


@dataclass(frozen=True)
class RideManager:
    """What the routes use."""

    unit_of_work: Callable[[], UnitOfWork]
    geo: Geo
    dispatch: Dispatch
    history: RideHistory
    quote_ttl_s: float
    idempotency_key_ttl_s: float
    rules: Deadlines
    max_active_rides: int


State = Annotated[RideManager, Depends(service_state)]


def rider_of(caller: Annotated[Caller, BFF]) -> str:
    """The rider the BFF acts for, from its verified token."""
    return for_rider(caller)


RiderId = Annotated[str, Depends(rider_of)]


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    addressId: str = Field(min_length=1, max_length=64)  # noqa: N815

    def ref(self) -> PlaceRef:
        return PlaceRef(address_id=self.addressId)


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)

    def ref(self) -> PlaceRef:
        return PlaceRef(lat=self.lat, lon=self.lon)


PlaceIn = AddressIn | PointIn  # one form or the other, as the schema says (extra fields are refused)


class InvalidCursor(ServiceError):
    """A history cursor this service did not hand out for that rider (its schema cannot tell)."""

    status, code = 422, "invalid_cursor"


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pickup: PlaceIn
    dropoff: PlaceIn


class RideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quoteId: str = Field(min_length=1, max_length=64)  # noqa: N815


@router.post(
    "/quotes",
    status_code=201,
    responses=errors(AddressNotFound, NoCarNearby, OutsideServiceArea, DependencyUnavailable),
)
def create_quote(body: QuoteIn, rider_id: RiderId, state: State) -> dict[str, Any]:
    quote = handlers.request_quote(
        RequestQuote(rider_id, body.pickup.ref(), body.dropoff.ref()),
        geo=state.geo,
        dispatch=state.dispatch,
        uow=state.unit_of_work(),
        ttl_s=state.quote_ttl_s,
    )
    return quote_to_json(quote)


@router.post(
    "/rides",
    status_code=202,
    responses=errors(
        (400, "idempotency_key_required"),
        QuoteNotFound,
        QuoteExpired,
        QuoteAlreadyUsed,
        IdempotencyKeyConflict,
        TooManyActiveRides,
    ),
)
def create_ride(
    body: RideIn,
    rider_id: RiderId,
    state: State,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128)],
) -> dict[str, Any]:
    """Book the quote's ride once per key (no key: the kernel answers 400 ``idempotency_key_required``)."""
    body_hash = hashlib.sha256(body.quoteId.encode()).hexdigest()
    ride = handlers.request_ride(
        RequestRide(rider_id, body.quoteId, idempotency_key, body_hash),
        uow_factory=state.unit_of_work,
        key_ttl_s=state.idempotency_key_ttl_s,
        rules=state.rules,
        max_active=state.max_active_rides,
    )
    return ride_to_json(ride)


@router.get("/rides/{ride_id}", responses=errors(RideNotFound))
def get_ride(ride_id: str, rider_id: RiderId, state: State) -> dict[str, Any]:
    return ride_to_json(handlers.get_ride(state.unit_of_work(), rider_id, ride_id))


@router.get("/rides", responses=errors(InvalidCursor))
def list_rides(
    rider_id: RiderId,
    state: State,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    try:
        rides, next_cursor = state.history.rides_of(rider_id, limit, cursor)
    except ValueError as exc:
        raise InvalidCursor("not a cursor of this rider's rides") from exc
    return {"rides": rides, "nextCursor": next_cursor}


@router.get("/rides/{ride_id}/versions", responses=errors(RideNotFound))
def ride_versions(
    ride_id: str,
    rider_id: RiderId,
    state: State,
    after_version: Annotated[int, Query(alias="afterVersion", ge=0)] = 0,
) -> dict[str, Any]:
    handlers.get_ride(state.unit_of_work(), rider_id, ride_id)  # 404 for someone else's ride
    return {"versions": state.history.versions(ride_id, after_version)}


@router.post("/rides/{ride_id}/cancel", status_code=202, responses=errors(RideNotFound, NotCancellable))
def cancel_ride(ride_id: str, rider_id: RiderId, state: State) -> dict[str, Any]:
    cancelled = handlers.cancel_ride(
        CancelRide(rider_id, ride_id), uow_factory=state.unit_of_work, rules=state.rules
    )
    return ride_to_json(cancelled)


@ops_router.get("/rides")
def ops_rides(state: State, _: Annotated[Literal["true"], Query(alias="active")] = "true") -> dict[str, Any]:
    """The rides in flight (``active=true``, the only list there is)."""
    return {"rides": state.history.active()}


@ops_router.post("/rides/{ride_id}/cancel", status_code=202, responses=errors(RideNotFound, NotCancellable))
def ops_cancel_ride(ride_id: str, state: State) -> dict[str, Any]:
    """An operator ends a ride before its trip, or one whose car stalled mid-trip (``OPERATOR_CANCELLED``,
    no fee)."""
    cancelled = handlers.cancel_by_operator(ride_id, uow_factory=state.unit_of_work, rules=state.rules)
    return ride_to_json(cancelled)
