"""The car edge's published language: telemetry on the Kinesis stream ``acr-car-telemetry`` (never a bus)."""

from __future__ import annotations

from enum import StrEnum

from acr.catalog.base import TELEMETRY, EventData, EventSpec, Instant


class CarPhase(StrEnum):
    """What a car is doing for its ride (IDLE: no ride)."""

    IDLE = "IDLE"
    TO_PICKUP = "TO_PICKUP"
    BOARDING = "BOARDING"
    TO_DESTINATION = "TO_DESTINATION"
    STALLED = "STALLED"


class Target(EventData):
    lat: float
    lon: float


class CarTelemetry(EventData):
    """One telemetry record of one car."""

    car_id: str
    ride_id: str | None
    phase: CarPhase
    lat: float
    lon: float
    speed_kmh: float
    heading: float
    battery: float
    odometer_m: float
    target: Target | None = None
    sim_time_s: float
    at: Instant


# Kept as long as the stream keeps records (24 h), never discarded: route-monitor measures each trip's
# distance and duration from every record of it, however late it reads them.
SPECS = (EventSpec("CarTelemetry", "car", CarTelemetry, "fact", published_on=TELEMETRY, ttl_s=86_400),)
