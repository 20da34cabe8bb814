"""A ride request crosses every hop: BFF -> ride-manager (outbox) -> acr-ride bus -> car-dispatcher queue ->
acr-fleet bus -> ride-manager queue -> SNS FIFO -> BFF FIFO queue -> websocket. Public API only."""

from __future__ import annotations

import time

import httpx
import pytest
from rider_client import Listener, Rider

pytestmark = pytest.mark.system


def _two_addresses(rider: Rider) -> tuple[dict[str, str], dict[str, str]]:
    city = httpx.get(
        f"{rider.base}/api/v1/map",
        params={"bbox": "-180,-90,180,90", "zoom": 1},
        headers=rider.headers,
        timeout=10,
    ).json()
    min_lon, min_lat, max_lon, max_lat = city["bounds"]
    points = [(min_lat + (max_lat - min_lat) * f, min_lon + (max_lon - min_lon) * f) for f in (0.35, 0.65)]
    found = [rider.get("/api/v1/addresses/reverse", lat=lat, lon=lon).json() for lat, lon in points]
    return {"addressId": found[0]["addressId"]}, {"addressId": found[1]["addressId"]}


def test_a_ride_request_travels_every_hop_to_the_riders_websocket(bff_url: str) -> None:
    rider = Rider.sign_up(bff_url, "Ada")
    pickup, dropoff = _two_addresses(rider)
    quote = rider.quote(pickup, dropoff)
    assert quote.status_code == 201, quote.text
    q = quote.json()
    assert q["pickupEtaSeconds"] > 0 and q["tripDurationSeconds"] > 0 and q["fare"]["currency"] == "EUR"

    listener = Listener(rider)
    booked = rider.book(q["quoteId"], key="walking-skeleton-1")
    assert booked.status_code == 202, booked.text
    ride = booked.json()
    assert ride["status"] == "REQUESTED" and ride["version"] == 1
    deadline = time.monotonic() + 30
    while not any(
        m["type"] == "ride.updated" and m["status"] == "CAR_ASSIGNED" for m in list(listener.messages)
    ):
        assert time.monotonic() < deadline, listener.messages
        time.sleep(0.2)
    listener.close()

    shown = rider.get(f"/api/v1/rides/{ride['rideId']}").json()
    assert shown["status"] in ("CAR_ASSIGNED", "CAR_ARRIVED", "IN_PROGRESS", "COMPLETED", "PAID")
    assert shown["carId"]

    again = rider.book(q["quoteId"], key="walking-skeleton-1")
    assert again.status_code == 202 and again.json()["rideId"] == ride["rideId"]
    conflict = rider.book("qte_other", key="walking-skeleton-1")
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "idempotency_key_conflict")
    used = rider.book(q["quoteId"], key="walking-skeleton-2")
    assert (used.status_code, used.json()["error"]["code"]) == (409, "quote_already_used")


def test_another_rider_cannot_see_the_ride(bff_url: str) -> None:
    ada, bob = Rider.sign_up(bff_url, "Ada"), Rider.sign_up(bff_url, "Bob")
    pickup, dropoff = _two_addresses(ada)
    ride = ada.book(ada.quote(pickup, dropoff).json()["quoteId"]).json()
    seen = bob.get(f"/api/v1/rides/{ride['rideId']}")
    assert (seen.status_code, seen.json()["error"]["code"]) == (404, "ride_not_found")
    assert bob.get("/api/v1/rides").json()["rides"] == []


def test_every_service_is_healthy_and_serves_openapi(stack) -> None:  # type: ignore[no-untyped-def]
    for service in stack.config.services:
        base = stack.config.url(service)
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200, service
        assert httpx.get(f"{base}/openapi.json", timeout=10).json()["openapi"].startswith("3."), service
