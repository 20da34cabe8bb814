"""The ride context's published language (bus ``acr-ride``; ride snapshots on ``acr-ride-updates.fifo``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from acr.catalog.base import RIDE_UPDATES, EventData, EventSpec, Instant, Place
from acr.money import Money


class CancellationReason(StrEnum):
    RIDER_CANCELLED = "RIDER_CANCELLED"
    NO_CAR_AVAILABLE = "NO_CAR_AVAILABLE"
    DISPATCH_TIMEOUT = "DISPATCH_TIMEOUT"


class RideRequested(EventData):
    ride_id: str
    rider_id: str
    pickup: Place
    dropoff: Place
    quoted_fare: Money
    quoted_distance_meters: float
    quoted_duration_seconds: float
    requested_at: Instant


class RideCancelled(EventData):
    ride_id: str
    rider_id: str
    car_id: str | None
    reason: CancellationReason
    fee: Money | None = None
    cancelled_at: Instant


class RideCompleted(EventData):
    ride_id: str
    rider_id: str
    car_id: str
    fare: Money
    distance_meters: float
    duration_seconds: float
    completed_at: Instant


class RideUpdated(EventData):
    """Full snapshot of a ride version (the API's ``Ride``), on the ``acr-ride-updates.fifo`` topic."""

    ride_id: str
    rider_id: str
    version: int
    ride: dict[str, Any]


SPECS = (
    EventSpec("RideRequested", "ride", RideRequested, "create"),
    EventSpec("RideCancelled", "ride", RideCancelled, "update"),
    EventSpec("RideCompleted", "ride", RideCompleted, "update"),
    EventSpec("RideUpdated", "ride", RideUpdated, "update", published_on=RIDE_UPDATES),
)
