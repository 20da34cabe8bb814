"""HTTP routes of ride-manager (called by the BFF). Thin: parse, call a use case, shape the answer."""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from acr.web import ApiError
from ride_manager import handlers
from ride_manager.bootstrap_types import Services
from ride_manager.commands import CancelRide, PlaceRef, RequestQuote, RequestRide
from ride_manager.snapshot import quote_to_json, ride_to_json

router = APIRouter(prefix="/v1")


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


Svc = Annotated[Services, Depends(_services)]
RiderId = Annotated[str, Query(alias="riderId", min_length=1, max_length=64)]


class PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    addressId: str | None = Field(default=None, min_length=1, max_length=64)  # noqa: N815
    lat: float | None = None
    lon: float | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PlaceIn:
        by_point = self.lat is not None and self.lon is not None
        if (self.addressId is None) == (not by_point) or (self.addressId and (self.lat or self.lon)):
            raise ValueError("give either addressId or both lat and lon")
        if by_point and not (math.isfinite(self.lat or 0) and math.isfinite(self.lon or 0)):
            raise ValueError("lat and lon must be finite numbers")
        return self

    def ref(self) -> PlaceRef:
        return PlaceRef(self.addressId, self.lat, self.lon)


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    riderId: str = Field(min_length=1, max_length=64)  # noqa: N815
    pickup: PlaceIn
    dropoff: PlaceIn


class RideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    riderId: str = Field(min_length=1, max_length=64)  # noqa: N815
    quoteId: str = Field(min_length=1, max_length=64)  # noqa: N815


@router.post("/quotes", status_code=201)
def create_quote(body: QuoteIn, svc: Svc) -> dict[str, Any]:
    uow = svc.uow()
    quote = handlers.request_quote(
        RequestQuote(body.riderId, body.pickup.ref(), body.dropoff.ref()),
        geo=svc.geo,
        dispatch=svc.dispatch,
        uow=uow,
        ttl_s=svc.settings.quote_ttl_s,
    )
    return quote_to_json(quote)


@router.post("/rides", status_code=202)
def create_ride(
    body: RideIn, svc: Svc, idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None
) -> dict[str, Any]:
    if not idempotency_key:
        raise ApiError(400, "idempotency_key_required", "the Idempotency-Key header is required")
    if len(idempotency_key) > 128:
        raise ApiError(400, "bad_request", "Idempotency-Key is 1 to 128 characters")
    body_hash = hashlib.sha256(body.quoteId.encode()).hexdigest()
    ride = handlers.request_ride(
        RequestRide(body.riderId, body.quoteId, idempotency_key, body_hash),
        uow_factory=svc.uow,
        key_ttl_s=svc.settings.idempotency_key_ttl_s,
    )
    return ride_to_json(ride)


@router.get("/rides/{ride_id}")
def get_ride(ride_id: str, rider_id: RiderId, svc: Svc) -> dict[str, Any]:
    return ride_to_json(handlers.get_ride(svc.uow(), rider_id, ride_id))


@router.get("/rides")
def list_rides(
    rider_id: RiderId,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    try:
        rides, next_cursor = svc.history.rides_of(rider_id, limit, cursor)
    except ValueError as exc:
        raise ApiError(422, "validation_error", "bad cursor") from exc
    return {"rides": rides, "nextCursor": next_cursor}


@router.get("/rides/{ride_id}/versions")
def ride_versions(
    ride_id: str,
    rider_id: RiderId,
    svc: Svc,
    after_version: Annotated[int, Query(alias="afterVersion", ge=0)] = 0,
) -> dict[str, Any]:
    handlers.get_ride(svc.uow(), rider_id, ride_id)  # 404 for someone else's ride
    return {"versions": svc.history.versions(ride_id, after_version)}


@router.post("/rides/{ride_id}/cancel", status_code=202)
def cancel_ride(ride_id: str, rider_id: RiderId, svc: Svc) -> dict[str, Any]:
    return ride_to_json(handlers.cancel_ride(CancelRide(rider_id, ride_id), uow_factory=svc.uow))


@router.get("/ops/rides")
def ops_rides(svc: Svc, active: bool = True) -> dict[str, Any]:
    if not active:
        raise ApiError(422, "validation_error", "only active=true is supported")
    return {"rides": svc.history.active()}


def domain_error_response(code: str, message: str) -> JSONResponse:
    status = STATUS_BY_CODE.get(code, 409)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


STATUS_BY_CODE = {
    "quote_not_found": 404,
    "ride_not_found": 404,
    "address_not_found": 404,
    "quote_expired": 409,
    "quote_already_used": 409,
    "idempotency_key_conflict": 409,
    "not_cancellable": 409,
    "no_car_available": 409,
    "outside_service_area": 422,
}
