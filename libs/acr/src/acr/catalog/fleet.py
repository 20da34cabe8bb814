"""The fleet context's published language (bus ``acr-fleet``, source ``acr.car-dispatcher``)."""

from __future__ import annotations

from acr.catalog.base import EventData, EventSpec, Instant, Place


class CarAssigned(EventData):
    ride_id: str
    car_id: str
    car_lat: float
    car_lon: float
    pickup: Place
    dropoff: Place
    pickup_eta_seconds: float
    assigned_at: Instant
    replaces_car_id: str | None = None


class NoCarAvailable(EventData):
    ride_id: str
    reason: str


class CarReleased(EventData):
    ride_id: str
    car_id: str
    reason: str


class CarOutOfService(EventData):
    car_id: str
    reason: str


SPECS = (
    EventSpec("CarAssigned", "fleet", CarAssigned, "update"),
    EventSpec("NoCarAvailable", "fleet", NoCarAvailable, "fact"),
    EventSpec("CarReleased", "fleet", CarReleased, "fact"),
    EventSpec("CarOutOfService", "fleet", CarOutOfService, "fact"),
)
