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


class FleetCarUpdated(EventData):
    """A car's whole dispatch state after a change (or its seeding), ``sequence`` the car's version: the
    live fleet view is built from these alone. ``lat``/``lon`` is where the dispatcher last knew the car to
    be; telemetry moves it more often than this."""

    car_id: str
    state: str
    ride_id: str | None
    lat: float
    lon: float
    version: int


SPECS = (
    EventSpec("CarAssigned", "fleet", CarAssigned, "update"),
    EventSpec("NoCarAvailable", "fleet", NoCarAvailable, "fact"),
    EventSpec("CarReleased", "fleet", CarReleased, "fact"),
    EventSpec("CarOutOfService", "fleet", CarOutOfService, "fact"),
    EventSpec("FleetCarUpdated", "fleet", FleetCarUpdated, "update"),
)
