"""The catalog, split per context behind one registry: where each event type goes, who publishes it,
aware times in payloads, and the kernel's one publish path (``outgoing``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from acr import catalog, clock
from acr.catalog import car, fleet, monitoring, payment, reward, ride
from acr.catalog.base import (
    RIDE_UPDATES_TOPIC,
    TELEMETRY_STREAM,
    Destination,
    EventData,
    EventSpec,
    Place,
    bus_name,
)
from acr.catalog.car import CarPhase, CarTelemetry
from acr.catalog.fleet import CarAssigned, NoCarAvailable
from acr.catalog.monitoring import TripStarted
from acr.catalog.ride import CancellationReason, RideCancelled, RideRequested, RideUpdated
from acr.envelope import CloudEvent
from acr.money import Money
from acr.unit_of_work import outgoing

AT = datetime(2026, 12, 3, 16, 20, 59, 598000, tzinfo=UTC)
PLACE = Place(label="1 Main Street", lat=60.17, lon=24.94)
CONTEXT_MODULES = {
    "ride": ride,
    "fleet": fleet,
    "monitoring": monitoring,
    "car": car,
    "payment": payment,
    "reward": reward,
}


def _expected_destination(spec: EventSpec) -> Destination:
    if spec.model is RideUpdated:
        return Destination("topic", RIDE_UPDATES_TOPIC)
    if spec.model is CarTelemetry:
        return Destination("stream", TELEMETRY_STREAM)
    return Destination("bus", bus_name(spec.context))


@pytest.mark.parametrize("spec", catalog.SPECS, ids=lambda spec: spec.name)
def test_every_type_is_published_where_its_producer_publishes(spec: EventSpec) -> None:
    assert spec.destination == _expected_destination(spec)


def test_the_special_destinations_and_the_buses() -> None:
    assert str(catalog.BY_MODEL[RideUpdated].destination) == "topic:acr-ride-updates.fifo"
    assert str(catalog.BY_MODEL[CarTelemetry].destination) == "stream:acr-car-telemetry"
    assert str(catalog.BY_MODEL[RideRequested].destination) == "bus:acr-ride"
    assert str(catalog.BY_MODEL[CarAssigned].destination) == "bus:acr-fleet"
    assert str(catalog.BY_MODEL[TripStarted].destination) == "bus:acr-monitoring"
    assert {spec.destination.kind for spec in catalog.SPECS} == {"bus", "topic", "stream"}


@pytest.mark.parametrize("context", sorted(CONTEXT_MODULES))
def test_each_context_module_holds_its_own_published_language(context: str) -> None:
    specs = CONTEXT_MODULES[context].SPECS
    assert specs and all(spec.context == context for spec in specs)
    assert all(spec.type == f"acme.acr.{context}.{spec.name}" for spec in specs)
    assert all(catalog.CATALOG[spec.type] is spec for spec in specs)  # one registry joins them


def test_the_registry_knows_each_type_once_by_name_and_by_model() -> None:
    assert len(catalog.CATALOG) == len(catalog.SPECS) == len(catalog.BY_MODEL)
    spec = catalog.spec_of(NoCarAvailable(ride_id="ride_1", reason="x"))
    assert spec.type == "acme.acr.fleet.NoCarAvailable"
    sources = {spec.context: spec.source for spec in catalog.SPECS}
    assert sources == {
        "ride": "acr.ride-manager",
        "fleet": "acr.car-dispatcher",
        "monitoring": "acr.route-monitor",
        "car": "acr.car-simulator",
        "payment": "acr.payment",
        "reward": "acr.reward",
    }


def _requested(at: datetime) -> RideRequested:
    return RideRequested(
        ride_id="ride_1",
        rider_id="rdr_1",
        pickup=PLACE,
        dropoff=PLACE,
        quoted_fare=Money.of("9.90"),
        quoted_distance_meters=1000,
        quoted_duration_seconds=120,
        requested_at=at,
    )


def test_an_instant_must_carry_its_offset() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        _requested(datetime(2026, 12, 3, 16, 20))  # naive
    with pytest.raises(ValidationError):
        TripStarted(ride_id="ride_1", car_id="car_1", at=datetime(2026, 12, 3, 16, 20))
    assert _requested(AT).requested_at == AT


def test_an_instant_without_an_offset_on_the_wire_is_schema_invalid() -> None:
    event = catalog.record(_requested(AT), subject="ride_1", sequence=1)
    assert clock.parse(event.data["requestedAt"]) == AT  # ISO 8601 with its offset on the wire
    naive = event.model_copy(update={"data": event.data | {"requestedAt": "2026-12-03T16:20:59"}})
    with pytest.raises(catalog.SchemaInvalid):
        catalog.decode(naive)


def test_a_payload_with_times_and_enums_survives_the_wire() -> None:
    cancelled = RideCancelled(
        ride_id="ride_1",
        rider_id="rdr_1",
        car_id=None,
        reason=CancellationReason.NO_CAR_AVAILABLE,
        cancelled_at=AT,
    )
    telemetry = CarTelemetry(
        car_id="car_1",
        ride_id=None,
        phase=CarPhase.IDLE,
        lat=60.17,
        lon=24.94,
        speed_kmh=0,
        heading=0,
        battery=0.9,
        odometer_m=12,
        sim_time_s=1,
        at=AT,
    )
    for data in (cancelled, telemetry, _requested(AT)):
        event = CloudEvent.from_json(catalog.record(data, subject="ride_1").to_json())
        assert catalog.decode(event) == data
    assert catalog.record(cancelled, subject="ride_1").data["reason"] == "NO_CAR_AVAILABLE"


def test_outgoing_addresses_a_topic_event_to_its_fifo_group() -> None:
    updated = RideUpdated(ride_id="ride_1", rider_id="rdr_1", version=2, ride={"status": "ASSIGNED"})
    out = outgoing(updated, subject="ride_1", sequence=2)
    assert (out.destination, out.group) == (Destination("topic", RIDE_UPDATES_TOPIC), "ride_1")
    assert (out.event.type, out.event.subject, out.event.sequence) == (
        "acme.acr.ride.RideUpdated",
        "ride_1",
        2,
    )
    assert json.loads(out.event.to_json())["data"]["version"] == 2


def test_outgoing_gives_a_bus_event_no_group() -> None:
    out = outgoing(NoCarAvailable(ride_id="ride_1", reason="none"), subject="ride_1")
    assert (out.destination, out.group) == (Destination("bus", "acr-fleet"), None)
    assert out.event.source == "acr.car-dispatcher" and out.event.eventcount == 1


def test_every_outgoing_event_is_new() -> None:
    data = NoCarAvailable(ride_id="ride_1", reason="none")
    first, second = outgoing(data, subject="ride_1"), outgoing(data, subject="ride_1")
    assert first.event.id != second.event.id  # the id is minted once per recorded event


def test_a_destination_reads_back_what_it_writes() -> None:
    for destination in {spec.destination for spec in catalog.SPECS}:
        assert Destination.parse(str(destination)) == destination
    for bad in ("queue:acr-x", "bus:", "acr-ride"):
        with pytest.raises(ValueError):
            Destination.parse(bad)


def test_payloads_are_camel_case_frozen_and_closed() -> None:
    data = NoCarAvailable(ride_id="ride_1", reason="none")
    assert data.model_dump(by_alias=True) == {"rideId": "ride_1", "reason": "none"}
    with pytest.raises(ValidationError):
        NoCarAvailable.model_validate({"rideId": "ride_1", "reason": "none", "extra": 1})
    with pytest.raises(ValidationError):
        data.ride_id = "ride_2"  # type: ignore[misc]
    assert isinstance(data, EventData)
