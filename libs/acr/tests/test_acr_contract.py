"""The error half of the OpenAPI (``acr.contract``) and the refusals the kernel answers (``acr.web``): what
the schema lists is what the app answers."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from acr.contract import BBOX, VISIBLE_TEXT, ErrorBody, document_errors, errors
from acr.errors import NotFound, ServiceError
from acr.guards import admit
from acr.web import install_error_handlers


class OutsideServiceArea(ServiceError):
    status, code = 422, "outside_service_area"


class Place(BaseModel):
    lat: float


def app_with_routes() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/places/{place_id}", responses=errors(NotFound, OutsideServiceArea))
    def place(place_id: str, zoom: Annotated[int, Query(ge=0, le=22)] = 13) -> dict[str, Any]:
        raise NotFound(f"no place {place_id} at zoom {zoom}")

    @app.post("/places/{place_id}")
    def move(place_id: str, body: Place, key: Annotated[str, Header(max_length=8)]) -> dict[str, str]:
        return {"placeId": place_id, "key": key}

    @app.get("/riders/{rider_id}", dependencies=[admit("bff")])
    def rider(rider_id: str) -> dict[str, str]:
        return {"riderId": rider_id}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    document_errors(app)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(app_with_routes())


def test_errors_lists_each_status_once_with_the_codes_named() -> None:
    responses = errors(NotFound, (404, "address_not_found"), 409)
    assert responses == {
        404: {"model": ErrorBody, "description": "not_found, address_not_found"},
        409: {"model": ErrorBody, "description": "Conflict"},
    }


def test_every_refusal_in_the_schema_has_the_one_error_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    read = schema["paths"]["/places/{place_id}"]["get"]["responses"]
    assert sorted(read) == ["200", "404", "422"]
    assert read["422"] == {"description": "validation_error, outside_service_area", "content": body}
    assert read["404"]["description"] == "not_found"
    write = schema["paths"]["/places/{place_id}"]["post"]["responses"]
    assert sorted(write) == ["200", "400", "413", "422"]  # a body that is not JSON, a bad header: 400
    assert write["400"] == {"description": "bad_request", "content": body}
    assert sorted(schema["paths"]["/health"]["get"]["responses"]) == ["200"]  # no input, no refusal
    guarded = schema["paths"]["/riders/{rider_id}"]["get"]["responses"]  # a service token, the BFF's only
    assert (guarded["401"]["description"], guarded["403"]["description"]) == ("unauthorized", "forbidden")
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    assert components["ErrorBody"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}


def test_a_405_allows_every_method_of_the_path(client: TestClient) -> None:
    answer = client.delete("/places/p1")
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
    assert answer.headers["Allow"] == "GET, POST"


def test_a_missing_header_is_400_named_after_it_and_a_bad_one_400(client: TestClient) -> None:
    missing = client.post("/places/p1", json={"lat": 1.0})
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "key_required")
    too_long = client.post("/places/p1", json={"lat": 1.0}, headers={"key": "k" * 9})
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "bad_request")
    bad_body = client.post("/places/p1", json={"lat": "north"}, headers={"key": "k"})
    assert (bad_body.status_code, bad_body.json()["error"]["code"]) == (422, "validation_error")
    assert client.post("/places/p1", json={"lat": 1.0}, headers={"key": "k"}).status_code == 200


@pytest.mark.parametrize(
    ("pattern", "allowed", "refused"),
    [
        (VISIBLE_TEXT, ["Ada", "  Ada Lovelace ", "Zoë"], ["", "   ", "bad\x07name", "tab\there", "\x85"]),
        (BBOX, ["24.9,60.1,25,60.2", "-1,-2,3,4"], ["1,2,3", "1,2,3,x", "1,2,3,1e3", "1,2,,4", "1,2,3,4,5"]),
    ],
)
def test_the_shared_patterns(pattern: str, allowed: list[str], refused: list[str]) -> None:
    """What the services' validation (pydantic) accepts, and the fuzzer (Python's ``re``) generates."""
    field = TypeAdapter(Annotated[str, Field(pattern=pattern)])
    for value in allowed:
        assert field.validate_python(value) == value and re.search(pattern, value)
    for value in refused:
        with pytest.raises(ValidationError):
            field.validate_python(value)
        assert not re.search(pattern, value)
