"""The error half of every service's OpenAPI: one error body, and the statuses each route answers.

A route names what it refuses with: ``responses=errors(404, 409)``, or by the refusal itself,
``responses=errors(RideNotFound, NotCancellable)`` (its status, and its code in the description). What the
kernel answers for every route (422 for a bad parameter, 400 for a body that is not JSON or a bad header,
413 for a body over the limit) is added by ``document_errors``, which also puts the shared error body in
place of FastAPI's own validation error schema, so a fuzzer (schemathesis, ``tests/system/test_contract.py``)
finds no status the schema does not list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.config import JsonDict, JsonValue

from acr.errors import ServiceError

# Request patterns shared by the services' schemas, so that what a schema allows is what the code accepts.
# Text with something to read and no control characters (what ``acr_city`` and the names allow):
VISIBLE_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
_NUMBER = r"-?[0-9]{1,3}(\.[0-9]{1,15})?"
BBOX = rf"^{_NUMBER}(,{_NUMBER}){{3}}$"  # minLon,minLat,maxLon,maxLat: four plain decimal numbers


def listed(values: Iterable[str]) -> JsonDict:
    """``json_schema_extra`` of a string field whose validator accepts only ``values``: the schema's enum."""
    choices: list[JsonValue] = list(values)
    return {"enum": choices}


ERROR_SCHEMA = "ErrorBody"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """``{"error": {"code": "<snake_case>", "message": "<text for people>"}}``: every service's errors."""

    error: ErrorDetail


Refusal = int | tuple[int, str] | type[ServiceError]


def errors(*refusals: Refusal) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each status it may refuse with, its body the shared error body and
    its description the codes named: a status alone, ``(status, code)`` (e.g. a code another service
    answers and this one passes on), or a ``ServiceError`` class, which has both."""
    codes: dict[int, list[str]] = defaultdict(list)
    for refusal in refusals:
        if isinstance(refusal, int):
            codes[refusal]
        elif isinstance(refusal, tuple):
            codes[refusal[0]].append(refusal[1])
        else:
            codes[refusal.status].append(refusal.code)
    return {
        status: {"model": ErrorBody, "description": ", ".join(found) or HTTPStatus(status).phrase}
        for status, found in sorted(codes.items())
    }


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _add(responses: dict[str, Any], status: int, code: str) -> None:
    """Document ``code`` under ``status``, with the codes the route named itself (FastAPI's own 422, whose
    body is not ours, is replaced)."""
    found = responses.get(str(status))
    ours = found is not None and "HTTPValidationError" not in str(found.get("content"))
    phrase = HTTPStatus(status).phrase
    named = [c for c in found["description"].split(", ") if c not in (code, phrase)] if ours and found else []
    responses[str(status)] = _error_response(", ".join([code, *named]))


def _document_operation(operation: dict[str, Any]) -> None:
    """What the kernel answers for any route: 422 ``validation_error`` when it takes input, 400
    ``bad_request`` when it takes a body (not JSON) or a header (missing or malformed), 413
    ``payload_too_large`` when it takes a body (``acr.body_limit``), 401 ``unauthorized`` when it needs a
    credential and 403 ``forbidden`` when it admits named callers only (``acr.guards``)."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    security: list[dict[str, list[str]]] = operation.get("security", [])
    if security:
        _add(responses, 401, "unauthorized")
    if any(roles for requirement in security for roles in requirement.values()):
        _add(responses, 403, "forbidden")
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        _add(responses, 422, "validation_error")
    if "requestBody" in operation or any(p.get("in") == "header" for p in parameters):
        _add(responses, 400, "bad_request")
    if "requestBody" in operation:
        _add(responses, 413, "payload_too_large")


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list the kernel's own refusals on every route, with the shared error body
    (FastAPI's ``HTTPValidationError`` 422 is not what ``acr.web`` answers)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in _FASTAPI_VALIDATION:
            schemas.pop(name, None)
        schemas.update(ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"])
        schemas[ERROR_SCHEMA] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas[ERROR_SCHEMA].pop("$defs", None)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                _document_operation(operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
