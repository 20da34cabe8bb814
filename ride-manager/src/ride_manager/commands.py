"""What the outside world asks the ride context to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlaceRef:
    address_id: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class RequestQuote:
    rider_id: str
    pickup: PlaceRef
    dropoff: PlaceRef


@dataclass(frozen=True)
class RequestRide:
    rider_id: str
    quote_id: str
    idempotency_key: str
    body_hash: str


@dataclass(frozen=True)
class CancelRide:
    rider_id: str
    ride_id: str
