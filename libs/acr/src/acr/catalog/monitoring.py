"""The monitoring context's published language (bus ``acr-monitoring``, source ``acr.route-monitor``)."""

from __future__ import annotations

from typing import Literal

from acr.catalog.base import ETA_TTL_S, EventData, EventSpec, Instant

Leg = Literal["TO_PICKUP", "TO_DESTINATION"]


class RideEtaUpdated(EventData):
    ride_id: str
    car_id: str
    phase: Leg
    eta_seconds: float
    lat: float
    lon: float


class CarArrivedAtPickup(EventData):
    ride_id: str
    car_id: str
    at: Instant


class TripStarted(EventData):
    ride_id: str
    car_id: str
    at: Instant


class TripCompleted(EventData):
    ride_id: str
    car_id: str
    distance_meters: float
    duration_seconds: float
    at: Instant


class CarStalled(EventData):
    ride_id: str | None
    car_id: str
    lat: float
    lon: float
    at: Instant


SPECS = (
    # the next ETA (every few seconds) replaces it: one older than its TTL is worth nothing to the rider
    EventSpec("RideEtaUpdated", "monitoring", RideEtaUpdated, "fact", ttl_s=ETA_TTL_S, discardable=True),
    EventSpec("CarArrivedAtPickup", "monitoring", CarArrivedAtPickup, "fact"),
    EventSpec("TripStarted", "monitoring", TripStarted, "fact"),
    EventSpec("TripCompleted", "monitoring", TripCompleted, "fact"),
    EventSpec("CarStalled", "monitoring", CarStalled, "fact"),
)
