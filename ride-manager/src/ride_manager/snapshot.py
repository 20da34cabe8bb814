"""The Ride and the Quote as the API shows them (camelCase JSON, docs/api.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from acr import clock
from acr.catalog.base import Place
from acr.catalog.ride import RideUpdated
from acr.money import Money
from ride_manager.domain import ACTIVE, Cancellation, Payment, Quote, Ride, RideStatus, TimelineEntry


def _money(amount: Decimal | None) -> dict[str, str] | None:
    return Money.of(amount).model_dump() if amount is not None else None


def _place(value: Place) -> dict[str, Any]:
    return {"label": value.label, "lat": value.lat, "lon": value.lon, "addressId": value.address_id}


def _cancellation(cancellation: Cancellation | None) -> dict[str, Any] | None:
    if cancellation is None:
        return None
    fee = cancellation.fee.model_dump() if cancellation.fee is not None else None
    return {"reason": cancellation.reason.value, "fee": fee, "at": clock.iso(cancellation.at)}


def _payment(payment: Payment | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    return {
        "status": payment.status.value,
        "paymentId": payment.payment_id,
        "amount": payment.amount.model_dump(),
    }


def _step(entry: TimelineEntry) -> dict[str, Any]:
    return {"status": entry.status.value, "at": clock.iso(entry.at), "carId": entry.car_id}


def ride_to_json(ride: Ride) -> dict[str, Any]:
    """Exactly the public ``Ride`` of docs/api.md."""
    return {
        "rideId": ride.ride_id,
        "riderId": ride.rider_id,
        "status": ride.status.value,
        "version": ride.version,
        "pickup": _place(ride.pickup),
        "dropoff": _place(ride.dropoff),
        "carId": ride.car_id,
        "quotedFare": _money(ride.quoted_fare),
        "fare": _money(ride.fare),
        "distanceMeters": ride.distance_m,
        "durationSeconds": ride.duration_s,
        "pickupEtaSeconds": ride.pickup_eta_s,
        "arrivalEtaSeconds": ride.arrival_eta_s,
        "cancellation": _cancellation(ride.cancellation),
        "payment": _payment(ride.payment),
        "pointsEarned": ride.points_earned,
        "requestedAt": clock.iso(ride.requested_at),
        "updatedAt": clock.iso(ride.updated_at),
        "timeline": [_step(entry) for entry in ride.timeline],
    }


def quote_to_json(quote: Quote) -> dict[str, Any]:
    """The public quote of docs/api.md."""
    return {
        "quoteId": quote.quote_id,
        "pickup": {"label": quote.pickup.label, "lat": quote.pickup.lat, "lon": quote.pickup.lon},
        "dropoff": {"label": quote.dropoff.label, "lat": quote.dropoff.lat, "lon": quote.dropoff.lon},
        "pickupEtaSeconds": round(quote.pickup_eta_s),
        "tripDurationSeconds": round(quote.trip_duration_s),
        "distanceMeters": round(quote.distance_m),
        "fare": _money(quote.fare),
        "expiresAt": clock.iso(quote.expires_at),
    }


def in_flight(snapshot: RideUpdated) -> bool:
    """Is the ride of this published snapshot neither completed nor cancelled yet (the ops list)?"""
    return RideStatus(snapshot.ride["status"]) in ACTIVE
