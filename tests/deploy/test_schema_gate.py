"""The compatibility gate: every catalog type's current version is in the registry folder and matches it; a
change that is not backward compatible with the released schema fails, naming the type, the field and the
fix, until it is published as a new version. The gate is run on temporary copies, never on the repository."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from acr.catalog import CATALOG, SPECS, record
from acr.catalog.base import EventData, EventSpec, Instant, Place
from acr.catalog.ride import RideRequested
from acr.money import Money
from acr.topology.schemas import GateFailed, export_registry, gate, incompatibilities, schema_of

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalog_passes_the_gate_against_the_committed_registry() -> None:
    assert gate(ROOT / "schemas") == []


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    return tmp_path / "schemas"


class RideRequestedWithoutRider(EventData):
    """RideRequested with ``riderId`` renamed to ``customerId``."""

    ride_id: str
    customer_id: str
    pickup: Place
    dropoff: Place
    quoted_fare: Money
    quoted_distance_meters: float
    quoted_duration_seconds: float
    requested_at: Instant


def _ride_requested(model: type[EventData], version: int = 1) -> EventSpec:
    return replace(CATALOG["acme.acr.ride.RideRequested"], model=model, version=version)


def test_a_renamed_field_fails_the_gate_with_the_type_the_field_and_the_fix(registry: Path) -> None:
    problems = gate(registry, [_ride_requested(RideRequestedWithoutRider)])
    fix = (
        "Fix: keep v1 compatible (restore the field, or make the new field optional), or publish the change "
        "as v2: set version=2 on its EventSpec in libs/acr/src/acr/catalog/ride.py and run `acr-topology "
        "export`, which writes schemas/ride/RideRequested/v2.json"
    )
    released = (
        "acme.acr.ride.RideRequested v1 is not backward compatible with schemas/ride/RideRequested/v1.json"
    )
    assert problems == [
        f"{released}: field 'riderId' removed or renamed (new fields: customerId). {fix}",
        f"{released}: field 'customerId' added as a new required field. {fix}",
    ]
    with pytest.raises(GateFailed):
        export_registry(registry, [_ride_requested(RideRequestedWithoutRider)])


def test_the_same_change_published_as_a_new_version_passes(registry: Path) -> None:
    v2 = _ride_requested(RideRequestedWithoutRider, version=2)
    assert gate(registry, [v2]) == [
        "acme.acr.ride.RideRequested v2 is not published: run `acr-topology export` to write "
        "schemas/ride/RideRequested/v2.json"
    ]
    export_registry(registry, [v2])
    assert gate(registry, [v2]) == []
    assert (registry / "ride" / "RideRequested" / "v1.json").read_text() == (
        ROOT / "schemas" / "ride" / "RideRequested" / "v1.json"
    ).read_text()
    assert gate(registry, [CATALOG["acme.acr.ride.RideRequested"]])[0].startswith(
        "acme.acr.ride.RideRequested is v1 in the catalog but v2 is released"
    )


def test_a_released_schema_edited_by_hand_is_caught(registry: Path) -> None:
    path = registry / "ride" / "RideCompleted" / "v1.json"
    released = json.loads(path.read_text())
    released["properties"]["tipAmount"] = {"type": "number"}  # v1 had carried a field the model lost
    path.write_text(json.dumps(released))
    (problem,) = gate(registry, [CATALOG["acme.acr.ride.RideCompleted"]])
    assert "field 'tipAmount' removed or renamed" in problem


class Colour(StrEnum):
    RED = "RED"
    GREEN = "GREEN"


class MoreColour(StrEnum):
    RED = "RED"
    GREEN = "GREEN"
    BLUE = "BLUE"


class Old(EventData):
    colour: Colour
    count: int
    note: str
    when: str


class Widened(EventData):
    """An enum value and an optional field added, an integer widened to a number: all compatible."""

    colour: MoreColour
    count: float
    note: str
    when: str
    extra: str | None = None


class Narrowed(EventData):
    colour: str
    count: int
    note: Colour
    when: Instant


def _changes(old: type[EventData], new: type[EventData]) -> list[str]:
    spec = SPECS[0]
    return [
        f"{i.field}: {i.change}"
        for i in incompatibilities(schema_of(replace(spec, model=old)), schema_of(replace(spec, model=new)))
    ]


def test_widening_is_compatible_and_adding_an_enum_value_is_too() -> None:
    assert _changes(Old, Widened) == []


def test_narrowing_a_type_a_format_or_an_enum_is_not() -> None:
    assert _changes(Old, Narrowed) == [
        "note: narrowed: now one of ['GREEN', 'RED']",
        "when: narrowed: now format date-time",
    ]
    assert _changes(Widened, Old) == [
        "colour: narrowed: values ['BLUE'] removed",
        "count: narrowed: number is no longer accepted (now integer)",
        "extra: removed or renamed",
    ]


def _registry_schemas() -> dict[str, dict[str, object]]:
    """The EventBridge schema registry entries of the exported stacks, by schema name."""
    found = {}
    for path in sorted((ROOT / "deploy" / "stacks").glob("*.json")):
        for resource in json.loads(path.read_text())["Resources"].values():
            if resource["Type"] == "AWS::EventSchemas::Schema":
                properties = resource["Properties"]
                found[properties["SchemaName"]] = json.loads(properties["Content"])
    return found


def test_the_eventbridge_registry_has_every_type_as_a_valid_draft_4_schema() -> None:
    schemas = _registry_schemas()
    assert set(schemas) == {f"{s.type}@v{s.version}" for s in SPECS}
    for schema in schemas.values():
        Draft4Validator.check_schema(schema)


def test_an_event_as_the_relay_puts_it_on_the_bus_matches_its_registry_schema() -> None:
    at = datetime(2026, 12, 3, 16, 20, tzinfo=UTC)
    place = Place(label="1 Main Street", lat=60.17, lon=24.94)
    data = RideRequested(
        ride_id="ride_1",
        rider_id="rdr_1",
        pickup=place,
        dropoff=place,
        quoted_fare=Money.of("9.90"),
        quoted_distance_meters=1000,
        quoted_duration_seconds=120,
        requested_at=at,
    )
    event = record(data, subject="ride_1", sequence=1)
    entry = {"detail-type": event.type, "source": event.source, "detail": json.loads(event.to_json())}
    schema = _registry_schemas()["acme.acr.ride.RideRequested@v1"]
    assert list(Draft4Validator(schema).iter_errors(entry)) == []
    entry["detail"]["data"].pop("riderId")
    assert list(Draft4Validator(schema).iter_errors(entry)) != []
