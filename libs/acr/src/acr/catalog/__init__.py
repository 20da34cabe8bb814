"""The event catalog: every event type ACR publishes, one typed, versioned model per type.

Each publishing context's published language is one small module (``acr.catalog.ride``, ``fleet``,
``monitoring``, ``car``, ``payment``, ``reward``); this registry joins them, so the producer, the source,
the schema and the destination of any event are known from its payload's type alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from acr.catalog import car, fleet, monitoring, payment, reward, ride
from acr.catalog.base import EventData, EventSpec
from acr.envelope import CloudEvent, new_event

SPECS: tuple[EventSpec, ...] = (
    *ride.SPECS,
    *fleet.SPECS,
    *monitoring.SPECS,
    *car.SPECS,
    *payment.SPECS,
    *reward.SPECS,
)
CATALOG: dict[str, EventSpec] = {spec.type: spec for spec in SPECS}
BY_MODEL: dict[type[EventData], EventSpec] = {spec.model: spec for spec in SPECS}


class UnknownEventType(ValueError):
    """The event's type is not in the catalog."""


class SchemaInvalid(ValueError):
    """The event's data does not match its catalog model."""


def spec_of(data: EventData) -> EventSpec:
    """The catalog entry of a payload."""
    return BY_MODEL[type(data)]


def record(data: EventData, *, subject: str | None, sequence: int | None = None) -> CloudEvent:
    """Wrap a payload in a new CloudEvent of its catalog type (id minted here, once)."""
    spec = spec_of(data)
    return new_event(
        type=spec.type,
        source=spec.source,
        subject=subject,
        data=data.model_dump(mode="json", by_alias=True),
        dataschema=spec.dataschema,
        sequence=sequence,
        ride_id=getattr(data, "ride_id", None),  # the ride whose trace the event continues
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


def producer_of(event_type: str) -> str:
    """The source of the only service that publishes ``event_type`` (``acr.<service>``); raises
    ``UnknownEventType``. A consumer trusts an event of this type from that source only."""
    spec = CATALOG.get(event_type)
    if spec is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return spec.source


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schema of every event type, keyed by ``dataschema`` id."""
    return {spec.dataschema: spec.model.model_json_schema(by_alias=True) for spec in SPECS}
