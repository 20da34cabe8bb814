"""HTTP routes of address-finder: autocomplete, geocode, reverse, addresses, routes and map data.

Handlers are ``async`` and answer pre-serialised JSON, and take the city (the service's state) from the
app state rather than through a dependency: the index answers in microseconds, so the framework's
per-request work is what is left to keep small.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from acr.contract import BBOX, VISIBLE_TEXT, errors
from acr.errors import NotFound, ServiceError, ValidationFailed
from acr.guards import admit
from acr_city import Address, City, InvalidQuery, OutsideServiceArea

router = APIRouter(prefix="/v1", dependencies=[admit("bff", "ride-manager")])  # addresses, maps, routes
MAX_QUERY = 200


class AddressNotFound(NotFound):
    code = "address_not_found"


class NotServed(ServiceError):
    """The place lies outside the city, or no drivable route joins the places."""

    status, code = 422, "outside_service_area"


def _city(request: Request) -> City:
    city: City = request.app.state.service
    return city


Text = Annotated[str, Query(min_length=1, max_length=MAX_QUERY, pattern=VISIBLE_TEXT)]
Lat = Annotated[float, Query(ge=-90, le=90)]
Lon = Annotated[float, Query(ge=-180, le=180)]


def _json(body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _address(a: Address) -> dict[str, Any]:
    return {"addressId": a.address_id, "label": a.label, "lat": a.lat, "lon": a.lon}


def _check_point(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValidationFailed("lat and lon must be finite numbers")


def _invalid(exc: InvalidQuery) -> ValidationFailed:
    return ValidationFailed(str(exc) or "invalid query")


def _outside(exc: OutsideServiceArea) -> NotServed:
    return NotServed(str(exc) or "outside the service area")


@router.get("/autocomplete")
async def autocomplete(q: Text, request: Request, limit: Annotated[int, Query(ge=1, le=20)] = 5) -> Response:
    try:
        return _json({"results": [_address(a) for a in _city(request).autocomplete(q, limit)]})
    except InvalidQuery as exc:
        raise _invalid(exc) from exc


@router.get("/geocode", responses=errors(AddressNotFound))
async def geocode(q: Text, request: Request) -> Response:
    try:
        found = _city(request).geocode(q)
    except InvalidQuery as exc:
        raise _invalid(exc) from exc
    if found is None:
        raise AddressNotFound("no address matches that text")
    address, confidence = found
    return _json(_address(address) | {"confidence": round(confidence, 3)})


@router.get("/reverse", responses=errors(NotServed))
async def reverse(lat: Lat, lon: Lon, request: Request) -> Response:
    _check_point(lat, lon)
    try:
        address, distance = _city(request).reverse(lat, lon)
    except OutsideServiceArea as exc:
        raise _outside(exc) from exc
    return _json(_address(address) | {"distanceMeters": round(distance, 1)})


@router.get("/addresses/{address_id}", responses=errors(AddressNotFound))
async def get_address(address_id: str, request: Request) -> Response:
    address = _city(request).address(address_id) if len(address_id) <= 64 else None
    if address is None:
        raise AddressNotFound("no such address")
    return _json(_address(address))


@router.get("/route", responses=errors(NotServed))
async def route(
    request: Request,
    from_lat: Annotated[float, Query(alias="fromLat", ge=-90, le=90)],
    from_lon: Annotated[float, Query(alias="fromLon", ge=-180, le=180)],
    to_lat: Annotated[float, Query(alias="toLat", ge=-90, le=90)],
    to_lon: Annotated[float, Query(alias="toLon", ge=-180, le=180)],
    geometry: bool = False,
) -> Response:
    """Travel time and distance on the street graph (and the path when ``geometry=true``)."""
    for lat, lon in ((from_lat, from_lon), (to_lat, to_lon)):
        _check_point(lat, lon)
    try:
        found = _city(request).route(from_lat, from_lon, to_lat, to_lon)
    except OutsideServiceArea as exc:
        raise _outside(exc) from exc
    if found is None:
        raise NotServed("no drivable route between those points")
    body: dict[str, Any] = {
        "distanceMeters": round(found.distance_m, 1),
        "durationSeconds": round(found.duration_s, 1),
    }
    if geometry:
        body["path"] = [[lat, lon] for lat, lon in found.path]
    return _json(body)


@router.get("/map", responses=errors(NotServed))
async def map_view(
    request: Request,
    bbox: Annotated[str, Query(max_length=200, pattern=BBOX)],
    zoom: Annotated[int, Query(ge=0, le=22)] = 13,
) -> Response:
    """Simplified street polylines for a view, with a bounded payload, and the city's bounds. The box is
    ``minLon,minLat,maxLon,maxLat``; corners given in any order are the same box."""
    lon1, lat1, lon2, lat2 = (float(v) for v in bbox.split(","))
    min_lon, max_lon, min_lat, max_lat = min(lon1, lon2), max(lon1, lon2), min(lat1, lat2), max(lat1, lat2)
    try:
        return _json(_city(request).map_view(min_lon, min_lat, max_lon, max_lat, zoom=zoom))
    except InvalidQuery as exc:
        raise _invalid(exc) from exc
    except OutsideServiceArea as exc:
        raise _outside(exc) from exc


@router.get("/city")
async def city_info(request: Request) -> Response:
    city = _city(request)
    return _json(
        {
            "name": city.name,
            "bounds": city.bounds.as_list(),
            "addresses": city.address_count,
            "nodes": city.node_count,
        }
    )
