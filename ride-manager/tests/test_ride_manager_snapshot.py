"""The Ride and the Quote as JSON: exactly what the API returned before the aggregate held value objects and
datetimes (the expected documents below were produced by the previous ``snapshot.py``; key order included)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from acr.catalog.base import Place
from acr.catalog.ride import CancellationReason
from acr.money import Money
from ride_manager.domain import Quote, Ride
from ride_manager.snapshot import quote_to_json, ride_to_json

A = Place(label="1 Harbour Street, 00100", lat=60.16, lon=24.93, address_id="A1")
B = Place(label="9 Station Road, 00130", lat=60.18, lon=24.96)
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
QUOTE = Quote("qte_1", "rdr_1", A, B, 90, 600, 5000, Decimal("10.00"), T0 + timedelta(seconds=300))

QUOTE_JSON: dict[str, Any] = {
    "quoteId": "qte_1",
    "pickup": {"label": "1 Harbour Street, 00100", "lat": 60.16, "lon": 24.93},
    "dropoff": {"label": "9 Station Road, 00130", "lat": 60.18, "lon": 24.96},
    "pickupEtaSeconds": 90,
    "tripDurationSeconds": 600,
    "distanceMeters": 5000,
    "fare": {"amount": "10.00", "currency": "EUR"},
    "expiresAt": "2026-01-02T03:09:05.678Z",
}
LATE_CANCELLATION: dict[str, Any] = {
    "rideId": "ride_1",
    "riderId": "rdr_1",
    "status": "CANCELLED",
    "version": 5,
    "pickup": {"label": "1 Harbour Street, 00100", "lat": 60.16, "lon": 24.93, "addressId": "A1"},
    "dropoff": {"label": "9 Station Road, 00130", "lat": 60.18, "lon": 24.96, "addressId": None},
    "carId": "car-1",
    "quotedFare": {"amount": "10.00", "currency": "EUR"},
    "fare": None,
    "distanceMeters": None,
    "durationSeconds": None,
    "pickupEtaSeconds": 0,
    "arrivalEtaSeconds": None,
    "cancellation": {
        "reason": "RIDER_CANCELLED",
        "fee": {"amount": "5.00", "currency": "EUR"},
        "at": "2026-01-02T03:04:08.678Z",
    },
    "payment": {"status": "SUCCEEDED", "paymentId": "ch_1", "amount": {"amount": "5.00", "currency": "EUR"}},
    "pointsEarned": None,
    "requestedAt": "2026-01-02T03:04:05.678Z",
    "updatedAt": "2026-01-02T03:04:09.678Z",
    "timeline": [
        {"status": "REQUESTED", "at": "2026-01-02T03:04:05.678Z", "carId": None},
        {"status": "CAR_ASSIGNED", "at": "2026-01-02T03:04:06.678Z", "carId": "car-1"},
        {"status": "CAR_ARRIVED", "at": "2026-01-02T03:04:07.678Z", "carId": "car-1"},
        {"status": "CANCELLED", "at": "2026-01-02T03:04:08.678Z", "carId": "car-1"},
    ],
}
PAID: dict[str, Any] = {
    "rideId": "ride_2",
    "riderId": "rdr_1",
    "status": "PAID",
    "version": 7,
    "pickup": {"label": "1 Harbour Street, 00100", "lat": 60.16, "lon": 24.93, "addressId": "A1"},
    "dropoff": {"label": "9 Station Road, 00130", "lat": 60.18, "lon": 24.96, "addressId": None},
    "carId": "car-1",
    "quotedFare": {"amount": "10.00", "currency": "EUR"},
    "fare": {"amount": "8.98", "currency": "EUR"},
    "distanceMeters": 4000,
    "durationSeconds": 500,
    "pickupEtaSeconds": 0,
    "arrivalEtaSeconds": 0,
    "cancellation": None,
    "payment": {"status": "SUCCEEDED", "paymentId": "ch_2", "amount": {"amount": "8.98", "currency": "EUR"}},
    "pointsEarned": 9,
    "requestedAt": "2026-01-02T03:04:05.678Z",
    "updatedAt": "2026-01-02T03:04:11.678Z",
    "timeline": [
        {"status": "REQUESTED", "at": "2026-01-02T03:04:05.678Z", "carId": None},
        {"status": "CAR_ASSIGNED", "at": "2026-01-02T03:04:06.678Z", "carId": "car-1"},
        {"status": "CAR_ARRIVED", "at": "2026-01-02T03:04:07.678Z", "carId": "car-1"},
        {"status": "IN_PROGRESS", "at": "2026-01-02T03:04:08.678Z", "carId": "car-1"},
        {"status": "COMPLETED", "at": "2026-01-02T03:04:09.678Z", "carId": "car-1"},
        {"status": "PAID", "at": "2026-01-02T03:04:10.678Z", "carId": "car-1"},
    ],
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def same_json(value: dict[str, Any], expected: dict[str, Any]) -> bool:
    return json.dumps(value) == json.dumps(expected)


def test_a_quote_as_json() -> None:
    assert same_json(quote_to_json(QUOTE), QUOTE_JSON)


def test_a_late_cancellation_and_its_fee_as_json() -> None:
    ride = Ride.request("ride_1", QUOTE, at(0))
    ride.assign_car("car-1", 80, at(1))
    ride.car_arrived("car-1", at(2))
    ride.cancel(CancellationReason.RIDER_CANCELLED, at(3))
    ride.payment_settled(True, "ch_1", Money.of("5"), at(4))
    assert same_json(ride_to_json(ride), LATE_CANCELLATION)


def test_a_paid_ride_with_its_points_as_json() -> None:
    ride = Ride.request("ride_2", QUOTE, at(0))
    ride.assign_car("car-1", 80, at(1))
    ride.car_arrived("car-1", at(2))
    ride.trip_started("car-1", at(3))
    ride.complete("car-1", 4000, 500, at(4))
    assert ride.fare is not None
    ride.payment_settled(True, "ch_2", Money.of(ride.fare), at(5))
    ride.points_recorded(9, at(6))
    assert same_json(ride_to_json(ride), PAID)
