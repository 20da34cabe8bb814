"""The ride context's published language (bus ``acr-ride``; ride snapshots on ``acr-ride-updates.fifo``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from acr.catalog.base import RIDE_UPDATES, EventData, EventSpec, Instant, Place
from acr.money import Money


class CancellationReason(StrEnum):
    """Why a ride ended cancelled: the rider or an operator asked, or the system could not finish it (every
    reason but the first two is the system's own failure, and never costs the rider a fee)."""

    RIDER_CANCELLED = "RIDER_CANCELLED"
    OPERATOR_CANCELLED = "OPERATOR_CANCELLED"
    NO_CAR_AVAILABLE = "NO_CAR_AVAILABLE"
    DISPATCH_TIMEOUT = "DISPATCH_TIMEOUT"
    CAR_NOT_ARRIVED = "CAR_NOT_ARRIVED"  # the assigned car did not reach the pickup in time
    TRIP_NOT_STARTED = "TRIP_NOT_STARTED"  # the car arrived but the trip never started
    TRIP_INTERRUPTED = "TRIP_INTERRUPTED"  # the trip did not reach the drop-off in time (a stalled car)


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
    """Full snapshot of a ride version (the API's ``Ride``), on the ``acr-ride-updates.fifo`` topic; a copy
    (its own id) also goes on the ``acr-ride`` bus, whose archive the ride history is rebuilt from."""

    ride_id: str
    rider_id: str
    version: int
    ride: dict[str, Any]


SPECS = (
    EventSpec("RideRequested", "ride", RideRequested, "create"),
    EventSpec("RideCancelled", "ride", RideCancelled, "update"),
    EventSpec("RideCompleted", "ride", RideCompleted, "update"),
    EventSpec("RideUpdated", "ride", RideUpdated, "update", published_on=RIDE_UPDATES, archived=True),
)
