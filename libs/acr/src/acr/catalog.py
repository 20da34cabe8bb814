"""The typed event catalog: one versioned pydantic model per event type, grouped by publishing context.

A type is ``acme.acr.<context>.<EventName>``; its JSON Schema id (``dataschema``) carries the version.
``kind`` tells consumers how to treat duplicates: a ``create`` is applied once, an ``update`` only when
its ``sequence`` is newer than what the consumer stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from acr.envelope import CloudEvent, new_event
from acr.money import Money

Kind = Literal["create", "update", "fact"]


class EventData(BaseModel):
    """Base of every event payload: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class Place(EventData):
    label: str
    lat: float
    lon: float
    address_id: str | None = None


# --- ride context (acr-ride bus, source acr.ride-manager) ---------------------------------------------
class RideRequested(EventData):
    ride_id: str
    rider_id: str
    pickup: Place
    dropoff: Place
    quoted_fare: Money
    quoted_distance_meters: float
    quoted_duration_seconds: float
    requested_at: str


class RideCancelled(EventData):
    ride_id: str
    rider_id: str
    car_id: str | None
    reason: Literal["RIDER_CANCELLED", "NO_CAR_AVAILABLE", "DISPATCH_TIMEOUT"]
    fee: Money | None = None
    cancelled_at: str


class RideCompleted(EventData):
    ride_id: str
    rider_id: str
    car_id: str
    fare: Money
    distance_meters: float
    duration_seconds: float
    completed_at: str


class RideUpdated(EventData):
    """Full snapshot of a ride version, on the ``acr-ride-updates.fifo`` topic."""

    ride_id: str
    rider_id: str
    version: int
    ride: dict[str, Any]


# --- fleet context (acr-fleet bus, source acr.car-dispatcher) ------------------------------------------
class CarAssigned(EventData):
    ride_id: str
    car_id: str
    car_lat: float
    car_lon: float
    pickup: Place
    dropoff: Place
    pickup_eta_seconds: float
    assigned_at: str
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


# --- monitoring context (acr-monitoring bus, source acr.route-monitor) ---------------------------------
class RideEtaUpdated(EventData):
    ride_id: str
    car_id: str
    phase: Literal["TO_PICKUP", "TO_DESTINATION"]
    eta_seconds: float
    lat: float
    lon: float


class CarArrivedAtPickup(EventData):
    ride_id: str
    car_id: str
    at: str


class TripStarted(EventData):
    ride_id: str
    car_id: str
    at: str


class TripCompleted(EventData):
    ride_id: str
    car_id: str
    distance_meters: float
    duration_seconds: float
    at: str


class CarStalled(EventData):
    ride_id: str | None
    car_id: str
    lat: float
    lon: float
    at: str


# --- car edge (Kinesis stream acr-car-telemetry, source acr.car-simulator; never on a bus) ----------------
class Target(EventData):
    lat: float
    lon: float


class CarTelemetry(EventData):
    """One telemetry record of one car. ``phase`` says what the car is doing for ``ride_id``."""

    car_id: str
    ride_id: str | None
    phase: Literal["IDLE", "TO_PICKUP", "BOARDING", "TO_DESTINATION", "STALLED"]
    lat: float
    lon: float
    speed_kmh: float
    heading: float
    battery: float
    odometer_m: float
    target: Target | None = None
    sim_time_s: float
    at: str


# --- payment context (acr-payment bus, source acr.payment) ---------------------------------------------
class PaymentSucceeded(EventData):
    ride_id: str
    rider_id: str
    payment_id: str
    amount: Money
    purpose: Literal["FARE", "CANCELLATION_FEE"]


class PaymentFailed(EventData):
    ride_id: str
    rider_id: str
    payment_id: str
    amount: Money
    purpose: Literal["FARE", "CANCELLATION_FEE"]
    reason: str


# --- reward context (acr-reward bus, source acr.reward) ------------------------------------------------
class RewardPointsEarned(EventData):
    ride_id: str
    rider_id: str
    points: int
    total_points: int


class RiderTierChanged(EventData):
    rider_id: str
    previous_tier: str
    tier: str


@dataclass(frozen=True)
class EventSpec:
    """One entry of the catalog."""

    name: str
    context: str
    model: type[EventData]
    kind: Kind
    version: int = 1

    @property
    def type(self) -> str:
        return f"acme.acr.{self.context}.{self.name}"

    @property
    def dataschema(self) -> str:
        return f"urn:acme:acr:schema:{self.context}:{self.name}:v{self.version}"

    @property
    def source(self) -> str:
        return f"acr.{CONTEXT_SERVICE[self.context]}"


CONTEXT_SERVICE: dict[str, str] = {
    "car": "car-simulator",
    "ride": "ride-manager",
    "fleet": "car-dispatcher",
    "monitoring": "route-monitor",
    "payment": "payment",
    "reward": "reward",
}

_SPECS = (
    EventSpec("RideRequested", "ride", RideRequested, "create"),
    EventSpec("RideCancelled", "ride", RideCancelled, "update"),
    EventSpec("RideCompleted", "ride", RideCompleted, "update"),
    EventSpec("RideUpdated", "ride", RideUpdated, "update"),
    EventSpec("CarAssigned", "fleet", CarAssigned, "update"),
    EventSpec("NoCarAvailable", "fleet", NoCarAvailable, "fact"),
    EventSpec("CarReleased", "fleet", CarReleased, "fact"),
    EventSpec("CarOutOfService", "fleet", CarOutOfService, "fact"),
    EventSpec("RideEtaUpdated", "monitoring", RideEtaUpdated, "fact"),
    EventSpec("CarArrivedAtPickup", "monitoring", CarArrivedAtPickup, "fact"),
    EventSpec("TripStarted", "monitoring", TripStarted, "fact"),
    EventSpec("TripCompleted", "monitoring", TripCompleted, "fact"),
    EventSpec("CarStalled", "monitoring", CarStalled, "fact"),
    EventSpec("CarTelemetry", "car", CarTelemetry, "fact"),
    EventSpec("PaymentSucceeded", "payment", PaymentSucceeded, "create"),
    EventSpec("PaymentFailed", "payment", PaymentFailed, "create"),
    EventSpec("RewardPointsEarned", "reward", RewardPointsEarned, "create"),
    EventSpec("RiderTierChanged", "reward", RiderTierChanged, "fact"),
)
CATALOG: dict[str, EventSpec] = {spec.type: spec for spec in _SPECS}
BY_MODEL: dict[type[EventData], EventSpec] = {spec.model: spec for spec in _SPECS}


class UnknownEventType(ValueError):
    """The event's type is not in the catalog."""


class SchemaInvalid(ValueError):
    """The event's data does not match its catalog model."""


def record(data: EventData, *, subject: str | None, sequence: int | None = None) -> CloudEvent:
    """Wrap a payload in a new CloudEvent of its catalog type (id minted here, once)."""
    spec = BY_MODEL[type(data)]
    return new_event(
        type=spec.type,
        source=spec.source,
        subject=subject,
        data=data.model_dump(mode="json", by_alias=True),
        dataschema=spec.dataschema,
        sequence=sequence,
    )


def decode(event: CloudEvent) -> EventData:
    """The typed payload of an event; raises ``UnknownEventType`` or ``SchemaInvalid``."""
    spec = CATALOG.get(event.type)
    if spec is None:
        raise UnknownEventType(f"unknown event type {event.type!r}")
    try:
        return spec.model.model_validate(event.data)
    except ValidationError as exc:
        raise SchemaInvalid(f"{spec.name} v{spec.version}: {exc.error_count()} invalid field(s)") from exc


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schema of every event type, keyed by ``dataschema`` id."""
    return {spec.dataschema: spec.model.model_json_schema(by_alias=True) for spec in _SPECS}
