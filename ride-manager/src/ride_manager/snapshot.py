"""The Ride as JSON: the API shape (camelCase) plus the few fields the write model keeps for itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from acr.catalog.base import Place
from acr.money import Money
from ride_manager.domain import Quote, Ride, RideStatus, TimelineEntry, iso


def _money(amount: Decimal | None) -> dict[str, str] | None:
    return Money.of(amount).model_dump() if amount is not None else None


def _place(place: Place) -> dict[str, Any]:
    return {"label": place.label, "lat": place.lat, "lon": place.lon, "addressId": place.address_id}


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
        "cancellation": ride.cancellation,
        "payment": ride.payment,
        "pointsEarned": ride.points_earned,
        "requestedAt": ride.requested_at,
        "updatedAt": ride.updated_at,
        "timeline": [{"status": t.status.value, "at": t.at, "carId": t.car_id} for t in ride.timeline],
    }


def stored_ride(ride: Ride) -> dict[str, Any]:
    """What the write model stores: the API shape plus the quote figures the fare rules need."""
    return ride_to_json(ride) | {
        "quotedDistanceMeters": ride.quoted_distance_m,
        "quotedDurationSeconds": ride.quoted_duration_s,
    }


def ride_from_json(doc: dict[str, Any]) -> Ride:
    """Inverse of ``stored_ride``."""
    return Ride(
        ride_id=doc["rideId"],
        rider_id=doc["riderId"],
        pickup=Place.model_validate(doc["pickup"]),
        dropoff=Place.model_validate(doc["dropoff"]),
        quoted_fare=Decimal(doc["quotedFare"]["amount"]),
        quoted_distance_m=float(doc.get("quotedDistanceMeters", 0)),
        quoted_duration_s=float(doc.get("quotedDurationSeconds", 0)),
        requested_at=doc["requestedAt"],
        status=RideStatus(doc["status"]),
        version=int(doc["version"]),
        car_id=doc.get("carId"),
        fare=Decimal(doc["fare"]["amount"]) if doc.get("fare") else None,
        distance_m=doc.get("distanceMeters"),
        duration_s=doc.get("durationSeconds"),
        pickup_eta_s=doc.get("pickupEtaSeconds"),
        arrival_eta_s=doc.get("arrivalEtaSeconds"),
        cancellation=doc.get("cancellation"),
        payment=doc.get("payment"),
        points_earned=doc.get("pointsEarned"),
        updated_at=doc.get("updatedAt", ""),
        timeline=[
            TimelineEntry(RideStatus(t["status"]), t["at"], t.get("carId")) for t in doc.get("timeline", [])
        ],
    )


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
        "expiresAt": iso(quote.expires_at),
    }
