"""HTTP adapters to address-finder and car-dispatcher (synchronous: quotes are a request/response hop)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from acr.catalog.base import Place
from acr.errors import DependencyUnavailable
from ride_manager.domain import AddressNotFound, OutsideServiceArea


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise DependencyUnavailable(f"{url}: {exc}") from exc
    if response.status_code >= 500:
        raise DependencyUnavailable(f"{url}: HTTP {response.status_code}")
    return response


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


class HttpGeo:
    """Places and trips from address-finder."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self._client = client
        self._base = base_url

    def _place(self, response: httpx.Response) -> Place:
        if response.status_code == 404:
            raise AddressNotFound("no such address")
        if response.status_code == 422 and _error_code(response) == "outside_service_area":
            raise OutsideServiceArea("that place is outside the service area")
        if response.status_code != 200:
            raise DependencyUnavailable(f"address-finder answered {response.status_code}")
        body = response.json()
        return Place(label=body["label"], lat=body["lat"], lon=body["lon"], address_id=body.get("addressId"))

    def place_of_address(self, address_id: str) -> Place:
        path = quote(address_id, safe="")  # an id is one path segment, never "../city"
        return self._place(_call(self._client, "GET", f"{self._base}/v1/addresses/{path}"))

    def place_at(self, lat: float, lon: float) -> Place:
        response = _call(self._client, "GET", f"{self._base}/v1/reverse", params={"lat": lat, "lon": lon})
        place = self._place(response)
        # The rider asked for this exact point: keep it, labelled with the nearest address.
        return Place(label=place.label, lat=lat, lon=lon, address_id=place.address_id)

    def trip(self, pickup: Place, dropoff: Place) -> tuple[float, float]:
        response = _call(
            self._client,
            "GET",
            f"{self._base}/v1/route",
            params={"fromLat": pickup.lat, "fromLon": pickup.lon, "toLat": dropoff.lat, "toLon": dropoff.lon},
        )
        if response.status_code == 422:
            raise OutsideServiceArea("that trip leaves the service area")
        if response.status_code != 200:
            raise DependencyUnavailable(f"address-finder route answered {response.status_code}")
        body = response.json()
        return float(body["distanceMeters"]), float(body["durationSeconds"])


class HttpDispatch:
    """The nearest available car's road ETA from car-dispatcher."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self._client = client
        self._base = base_url

    def pickup_eta(self, lat: float, lon: float) -> float | None:
        response = _call(self._client, "POST", f"{self._base}/v1/pickup-eta", json={"lat": lat, "lon": lon})
        if response.status_code == 409:
            return None
        if response.status_code == 422 and _error_code(response) == "outside_service_area":
            raise OutsideServiceArea("that place is outside the service area")
        if response.status_code != 200:
            raise DependencyUnavailable(f"car-dispatcher answered {response.status_code}")
        return float(response.json()["etaSeconds"])

    def assigned_car(self, ride_id: str) -> str | None:
        """``GET /v1/assignments/{rideId}``: the car of an ASSIGNED or COMPLETED assignment; None for a
        ride the fleet has no row for, or one that got no car or was cancelled there."""
        response = _call(self._client, "GET", f"{self._base}/v1/assignments/{ride_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DependencyUnavailable(f"car-dispatcher answered {response.status_code}")
        body = response.json()
        if body.get("status") not in ("ASSIGNED", "COMPLETED"):
            return None
        car_id = body.get("carId")
        return str(car_id) if car_id else None
