"""What every ACR FastAPI app shares: one error shape for every error, health and the ops routes."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from acr.errors import ServiceError
from acr.metrics import COUNTERS
from acr.unit_of_work import Conflict

log = logging.getLogger(__name__)

_STATUS_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    401: "unauthorized",
    400: "bad_request",
    429: "rate_limited",
    503: "dependency_unavailable",
}


class OpsMessaging(Protocol):
    """What the ops routes ask of a service's messaging."""

    def stats(self) -> dict[str, object]: ...

    def redrive_dead_letters(self) -> int: ...

    def events_about(self, subject: str) -> list[dict[str, object]]: ...


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def _is_malformed_json(exc: RequestValidationError) -> bool:
    return any(err.get("type") == "json_invalid" for err in exc.errors())


def install_error_handlers(app: FastAPI) -> None:
    """Every error, the framework's own included, becomes ``{"error": {"code", "message"}}``."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, __: Conflict) -> JSONResponse:
        return error_response(409, "concurrent_update", "the resource changed meanwhile; try again")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(
            exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        )
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        if _is_malformed_json(exc):
            return error_response(400, "bad_request", "request body is not valid JSON")
        return error_response(422, "validation_error", _validation_message(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", exc)
        return error_response(500, "internal_error", "unexpected error")


def install_ops_routes(app: FastAPI, service: str) -> None:
    """``GET /healthz`` (unless the service answers it itself), ``GET /v1/ops/stats`` (this process's
    counters and, when the service has a messaging slice, its DLQ depths), ``POST /v1/ops/dlq/redrive``
    and ``GET /v1/ops/events?subject=`` (what the service published about one aggregate)."""

    def messaging(request: Request) -> OpsMessaging | None:
        return getattr(request.app.state, "messaging", None)

    own_routes = {getattr(route, "path", None) for route in app.routes}
    if "/healthz" not in own_routes:

        @app.get("/healthz", tags=["ops"])
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": service}

    @app.get("/v1/ops/stats", tags=["ops"])
    def stats(request: Request) -> dict[str, Any]:
        counters = COUNTERS.snapshot()
        found = messaging(request)
        if found is not None:
            counters |= found.stats()
        return counters

    @app.post("/v1/ops/dlq/redrive", tags=["ops"])
    def redrive_producer_dlq(request: Request) -> dict[str, Any]:
        found = messaging(request)
        queue = f"acr-{service}-producer-dlq"
        return {"queue": queue, "redriven": found.redrive_dead_letters() if found else 0}

    @app.get("/v1/ops/events", tags=["ops"])
    def ops_events(subject: str, request: Request) -> dict[str, Any]:
        found = messaging(request)
        return {"service": service, "events": found.events_about(subject) if found else []}
