import json

import pytest

from acr import catalog
from acr.catalog.fleet import NoCarAvailable
from acr.envelope import CloudEvent, InvalidEnvelope


def _event() -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id="ride_1", reason="none"), subject="ride_1", sequence=3)


def test_structured_json_round_trip_keeps_every_attribute_and_extension() -> None:
    event = _event()
    doc = json.loads(event.to_json())
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "acme.acr.fleet.NoCarAvailable"
    assert doc["source"] == "acr.car-dispatcher"
    assert doc["dataschema"] == "urn:acme:acr:schema:fleet:NoCarAvailable:v1"
    assert (doc["eventcount"], doc["sequence"]) == (1, 3)
    assert doc["traceparent"].startswith("00-")
    assert CloudEvent.from_json(event.to_json()) == event


def test_a_resend_keeps_the_id_and_counts_up() -> None:
    event = _event()
    again = event.resent().resent()
    assert (again.id, again.eventcount) == (event.id, 3)
    assert again.dedup_key == f"acr.car-dispatcher#{event.id}"


@pytest.mark.parametrize(
    "raw", ["not json", "[]", '{"id": "x"}', '{"specversion": "1.0", "id": "x", "source": "s"}']
)
def test_garbage_is_an_invalid_envelope(raw: str) -> None:
    with pytest.raises(InvalidEnvelope):
        CloudEvent.from_json(raw)


def test_decode_validates_against_the_catalog() -> None:
    event = _event()
    assert catalog.decode(event) == NoCarAvailable(ride_id="ride_1", reason="none")
    with pytest.raises(catalog.SchemaInvalid):
        catalog.decode(event.model_copy(update={"data": {"rideId": 5}}))
    with pytest.raises(catalog.UnknownEventType):
        catalog.decode(event.model_copy(update={"type": "acme.acr.fleet.Nope"}))


def test_every_catalog_type_has_a_json_schema() -> None:
    schemas = catalog.json_schemas()
    assert len(schemas) == len(catalog.CATALOG)
    assert all(schema["type"] == "object" for schema in schemas.values())
