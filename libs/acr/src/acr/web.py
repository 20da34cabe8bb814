"""What every ACR FastAPI app shares: one error shape for every error, health and the ops routes."""

from __future__ import annotations

import logging
import os
from http import HTTPStatus
from typing import Annotated, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from pydantic import BaseModel, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from acr import clock
from acr.contract import errors, listed
from acr.errors import NotFound, ServiceError
from acr.faults import KNOWN, MAX_WINDOW_S, Faults, Window, process_faults, windows_allowed
from acr.guards import OPS, SCRAPER
from acr.metrics import COUNTERS, QueueGauges
from acr.projections import Projections, RebuildInProgress, UnknownProjection
from acr.settings import Settings, get_settings
from acr.trace_export import RECENT
from acr.unit_of_work import Conflict

log = logging.getLogger(__name__)

_STATUS_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    401: "unauthorized",
    400: "bad_request",
    413: "payload_too_large",
    429: "rate_limited",
    503: "dependency_unavailable",
}


class OpsMessaging(QueueGauges, Protocol):
    """What the ops routes (and ``/metrics``) ask of a service's messaging."""

    def stats(self) -> dict[str, object]: ...

    def redrive_dead_letters(self) -> int: ...

    def dead_letter_queues(self) -> list[dict[str, object]]: ...

    def redrive_dead_letter_queue(self, queue: str) -> dict[str, object]: ...

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


def _bad_header(exc: RequestValidationError) -> tuple[bool, str] | None:
    """``(missing, name)`` of the first header the request got wrong, when headers are all it got
    wrong: a header is a bad request (400, ``<name>_required`` when missing), not unprocessable content."""
    errors = exc.errors()
    if not errors or any(err.get("loc", ("",))[0] != "header" for err in errors):
        return None
    first = errors[0]
    name = str(first["loc"][1]).lower().replace("-", "_") if len(first["loc"]) > 1 else "header"
    return first.get("type") == "missing", name


def _framework_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """A 404 or 405 of the router (a 405 with the ``Allow`` of every route at that path)."""
    code = _STATUS_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"))
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = (headers or {}) | {"Allow": allowed_methods(request)}
    return error_response(exc.status_code, code, message, headers)


def _invalid_request(exc: RequestValidationError) -> JSONResponse:
    """422 ``validation_error``, but 400 when only headers are wrong (``<name>_required`` when missing)."""
    header = _bad_header(exc)
    if header is None:
        return error_response(422, "validation_error", _validation_message(exc))
    missing, name = header
    if missing:
        return error_response(400, f"{name}_required", f"the {name} header is required")
    return error_response(400, "bad_request", _validation_message(exc))


def allowed_methods(request: Request) -> str:
    """The ``Allow`` of a 405: every method some route serves at this path (Starlette names only the first
    route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _internal_error(exc: Exception) -> JSONResponse:
    log.exception("unexpected error: %s", exc)
    return error_response(500, "internal_error", "unexpected error")


def _retryable(exc: ClientError) -> bool:
    """Throttling or a failure on AWS's side: the call may pass later."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or "Throttl" in code


def install_error_handlers(app: FastAPI) -> None:
    """Every error, the framework's own included, becomes ``{"error": {"code", "message"}}``."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(BotoCoreError)
    async def _store_unreachable(_: Request, exc: BotoCoreError) -> JSONResponse:
        log.warning("AWS did not answer: %s", exc)
        return error_response(503, "dependency_unavailable", "a store this service needs does not answer")

    @app.exception_handler(ClientError)
    async def _store_refused(_: Request, exc: ClientError) -> JSONResponse:
        if _retryable(exc):
            log.warning("AWS refused for now: %s", exc)
            return error_response(503, "dependency_unavailable", "a store this service needs is busy")
        return _internal_error(exc)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, __: Conflict) -> JSONResponse:
        return error_response(409, "concurrent_update", "the resource changed meanwhile; try again")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _framework_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        if _is_malformed_json(exc):
            return error_response(400, "bad_request", "request body is not valid JSON")
        return _invalid_request(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal_error(exc)


class FaultWindowRequest(BaseModel):
    """``POST /v1/ops/faults``: make ``fault`` happen at ``rate`` for ``seconds``."""

    fault: str = Field(json_schema_extra=listed(sorted(KNOWN)))
    rate: float = Field(ge=0, le=1, strict=True)
    seconds: float = Field(ge=1, le=MAX_WINDOW_S, strict=True)

    @field_validator("fault")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KNOWN:
            raise ValueError(f"unknown fault {value!r}; known: {', '.join(sorted(KNOWN))}")
        return value


def window_json(window: Window) -> dict[str, Any]:
    return {
        "faultId": window.fault_id,
        "fault": window.fault,
        "rate": window.rate,
        "until": clock.iso(clock.from_timestamp(window.until)),
    }


def process_fault_windows(request: Request) -> Faults:
    """This process's faults, where windows can be opened (``NotFound`` in AWS mode)."""
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    if not windows_allowed(settings.aws_endpoint_url):
        raise NotFound("fault windows are off in AWS mode")
    return process_faults(settings.faults, settings.faults_seed)


def install_fault_routes(app: FastAPI) -> None:
    """``POST /v1/ops/faults`` opens a fault window (202 with the window), ``GET /v1/ops/faults`` lists
    the open ones."""

    @app.post("/v1/ops/faults", tags=["ops"], status_code=202, dependencies=[OPS], responses=errors(NotFound))
    def open_fault_window(body: FaultWindowRequest, request: Request) -> dict[str, Any]:
        window = process_fault_windows(request).open(body.fault, body.rate, body.seconds)
        log.warning("fault window opened: %s at %.2f for %.0f s", body.fault, body.rate, body.seconds)
        return window_json(window)

    @app.get("/v1/ops/faults", tags=["ops"], dependencies=[OPS], responses=errors(NotFound))
    def open_fault_windows(request: Request) -> dict[str, Any]:
        return {"faults": [window_json(w) for w in process_fault_windows(request).windows()]}


def install_projection_routes(app: FastAPI, service: str) -> None:
    """``GET /v1/ops/projections`` and ``POST /v1/ops/projections/{name}/rebuild``: the read models the
    service added to ``Runtime.projections`` (none: an empty list)."""

    def projections(request: Request) -> Projections:
        found: Projections | None = getattr(request.app.state, "projections", None)
        return found if found is not None else Projections()

    @app.get("/v1/ops/projections", tags=["ops"], dependencies=[OPS])
    def ops_projections(request: Request) -> dict[str, Any]:
        """Each read model of the service: LIVE or REBUILDING, the p50/p99 lag of its recent events (this
        process's), its last rebuild."""
        return {"service": service, "projections": projections(request).describe(COUNTERS.projection_lag)}

    @app.post(
        "/v1/ops/projections/{name}/rebuild",
        tags=["ops"],
        status_code=202,
        dependencies=[OPS],
        responses=errors(UnknownProjection, RebuildInProgress),
    )
    def ops_rebuild(name: str, request: Request) -> dict[str, Any]:
        """Rebuild a read model from its producers' bus archive into a fresh copy; reads switch to it once
        it caught up (poll ``GET /v1/ops/projections``)."""
        pointer = projections(request).rebuild(name)
        return {"service": service, "name": name, "state": pointer.state.value}


def _messaging(request: Request) -> OpsMessaging | None:
    """The messaging the service's wiring set (none: a service without a messaging slice)."""
    return getattr(request.app.state, "messaging", None)


def install_dead_letter_routes(app: FastAPI, service: str) -> None:
    """``GET /v1/ops/dlq``, ``POST /v1/ops/dlq/{queue}/redrive`` and ``POST /v1/ops/dlq/redrive``: the
    service's own DLQs (``acr.dead_letters``), which only its own role may read and send back from; the
    BFF's ``/ops/dlq`` gathers them."""

    @app.post("/v1/ops/dlq/redrive", tags=["ops"], dependencies=[OPS])
    def redrive_producer_dlq(request: Request) -> dict[str, Any]:
        """Publish again what the relay dead-lettered (same ids)."""
        found = _messaging(request)
        queue = f"acr-{service}-producer-dlq"
        return {"queue": queue, "redriven": found.redrive_dead_letters() if found else 0}

    @app.get("/v1/ops/dlq", tags=["ops"], dependencies=[OPS])
    def dead_letter_queues(request: Request) -> dict[str, Any]:
        """The service's own DLQs (its consumers', each replica's copy included, and its producer's), each
        with its depth and the reasons of up to 30 of its messages."""
        found = _messaging(request)
        return {"service": service, "queues": found.dead_letter_queues() if found else []}

    @app.post("/v1/ops/dlq/{queue}/redrive", tags=["ops"], dependencies=[OPS], responses=errors(NotFound))
    def redrive_dead_letter_queue(queue: str, request: Request) -> dict[str, Any]:
        """Move a consumer DLQ's messages back to the queue they came from (at most 1000 a call), or publish
        the producer DLQ's events again (same ids); 404 for a queue that is not one of the service's DLQs."""
        found = _messaging(request)
        if found is None:
            raise NotFound(f"{service} has no dead-letter queues")
        return found.redrive_dead_letter_queue(queue)


SUBJECT_MAX = 256
"""The longest subject asked for: ids are far shorter, and an index key has a size limit."""


def install_ops_routes(app: FastAPI, service: str, *, health: bool = True) -> None:
    """``GET /healthz`` (open; unless ``health`` is False: the service answers it itself) and, behind the ops
    credential (``acr.guards.OPS``), ``GET /v1/ops/stats``
    (this process's counters and, when the service has a messaging slice, its DLQ depths and oldest
    pending outbox row), ``GET /v1/ops/replica`` (which process answers), its DLQs (``GET /v1/ops/dlq``,
    ``POST /v1/ops/dlq/{queue}/redrive``, and ``POST /v1/ops/dlq/redrive`` for the producer DLQ),
    ``GET /v1/ops/events?subject=`` (what the service published about one aggregate),
    ``GET /v1/ops/spans?traceId=`` (this process's recent spans of one trace), the service's read models
    (``GET /v1/ops/projections``, ``POST /v1/ops/projections/{name}/rebuild``) and the fault windows
    (``install_fault_routes``)."""

    if health:

        @app.get("/healthz", tags=["ops"])
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": service}

    @app.get("/v1/ops/stats", tags=["ops"], dependencies=[OPS])
    def stats(request: Request) -> dict[str, Any]:
        counters = COUNTERS.snapshot()
        found = _messaging(request)
        if found is not None:
            counters |= found.stats()
        return counters

    @app.get("/v1/ops/replica", tags=["ops"], dependencies=[OPS])
    def replica(request: Request) -> dict[str, Any]:
        """The replica name and pid of the process that answers (the BFF's ``/ops/replicas`` asks each)."""
        settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
        return {"service": service, "replica": settings.replica, "pid": os.getpid()}

    @app.get("/v1/ops/spans", tags=["ops"], dependencies=[OPS])
    def ops_spans(traceId: Annotated[str, Query(pattern="^[0-9a-f]{32}$")]) -> dict[str, Any]:  # noqa: N803
        """This process's recent spans of one trace (and those linking to it), from its in-memory ring."""
        return {"service": service, "spans": RECENT.of_trace(traceId)}

    @app.get("/v1/ops/events", tags=["ops"], dependencies=[OPS])
    def ops_events(
        subject: Annotated[str, Query(min_length=1, max_length=SUBJECT_MAX)], request: Request
    ) -> dict[str, Any]:
        """What the service published about one aggregate (a query of its outbox's subject index, whose key
        must be 1 to ``SUBJECT_MAX`` characters)."""
        found = _messaging(request)
        return {"service": service, "events": found.events_about(subject) if found else []}

    install_dead_letter_routes(app, service)
    install_projection_routes(app, service)
    install_fault_routes(app)


METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "This process's metrics in the Prometheus text format (version 0.0.4)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def install_metrics_route(app: FastAPI) -> None:
    """``GET /metrics`` behind the ops credential (``acr.guards.SCRAPER``): the registry the app made when
    it started (``acr.metrics.service_registry``), or before that the process's counters alone."""

    @app.get(
        "/metrics",
        tags=["ops"],
        dependencies=[SCRAPER],
        response_class=PlainTextResponse,
        responses=METRICS_RESPONSE,
    )
    def metrics(request: Request) -> Response:
        """Prometheus scrapes this (docs/security.md says how it presents the ops token)."""
        registry = getattr(request.app.state, "metrics", None) or COUNTERS.registry
        # The text format Prometheus has always read: prometheus_client's own answer to a scraper that
        # asks for no other (its CONTENT_TYPE_LATEST, 1.0.0, is for names outside the classic alphabet).
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)
