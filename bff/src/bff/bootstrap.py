"""The composition root: the one place that wires adapters, state, routes and messaging to the app."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from acr import aws, logs
from acr.runtime import Messaging
from acr.settings import SERVICE_PORTS, Settings, get_settings
from acr.web import error_response, install_error_handlers
from bff import api, ops, ws
from bff.adapters.dlq import SqsDeadLetters
from bff.adapters.http import (
    HttpAddressFinder,
    HttpFleet,
    HttpLoyalty,
    HttpPayments,
    HttpRideManager,
    HttpServiceStats,
    ServiceHttp,
    make_client,
)
from bff.consumer import make_handler
from bff.errors import BffError
from bff.state import BffState, Dependencies, build_state
from bff.topology import TOPOLOGY

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
OTHER_SERVICES = tuple(service for service in SERVICE_PORTS if service != "bff")
_TOKEN = re.compile(r"(token=)[^&\s\"]*")


class RedactTokens(logging.Filter):
    """Servers log request paths with their query string: never let a ``token=`` value through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN.sub(r"\1***", message), ()
        return True


def redact_server_logs() -> None:
    """Install ``RedactTokens`` on the loggers uvicorn writes request lines to."""
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def http_dependencies(client: httpx.AsyncClient, settings: Settings) -> Dependencies:
    """The production adapters: HTTP to every service, SQS for the dead-letter queues."""
    https = {name: ServiceHttp(client, name, settings.service_url(name)) for name in OTHER_SERVICES}
    return Dependencies(
        ride_manager=HttpRideManager(https["ride-manager"]),
        addresses=HttpAddressFinder(https["address-finder"]),
        fleet=HttpFleet(https["car-dispatcher"], https["car-simulator"]),
        loyalty=HttpLoyalty(https["reward"]),
        payments=HttpPayments(https["payment"]),
        services=HttpServiceStats(https),
        dead_letters=SqsDeadLetters(aws.client("sqs", settings)),
    )


def start_messaging(state: BffState, loop: asyncio.AbstractEventLoop) -> Messaging:
    """Consume every queue of the BFF's slice with the push handler."""
    messaging = Messaging(TOPOLOGY, state.settings)
    handler = make_handler(state.hub, loop)
    for subscription in TOPOLOGY.subscriptions:
        messaging.consume(subscription.queue, handler)
    for topic_subscription in TOPOLOGY.topic_subscriptions:
        messaging.consume(topic_subscription.queue, handler, fifo=True)
    messaging.start()
    return messaging


def _lifespan(
    settings: Settings, dependencies: Dependencies | None, messaging_on: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_server_logs()
        loop = asyncio.get_running_loop()
        async with make_client() as client:
            if dependencies is None:
                app.state.bff = build_state(settings, http_dependencies(client, settings))
            state: BffState = app.state.bff
            app.state.ride_updates_handler = make_handler(state.hub, loop)
            messaging = await asyncio.to_thread(start_messaging, state, loop) if messaging_on else None
            app.state.messaging = messaging
            try:
                yield
            finally:
                if messaging is not None:
                    await asyncio.to_thread(messaging.stop)

    return lifespan


def _install_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def rider_app() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def create_app(
    dependencies: Dependencies | None = None, settings: Settings | None = None, messaging: bool | None = None
) -> FastAPI:
    """The BFF app. Without ``dependencies`` it talks HTTP to the services and consumes the ride stream;
    with them (unit tests: in-memory fakes) it starts no messaging unless ``messaging=True``."""
    settings = settings or get_settings()
    logs.configure("bff", settings.log_level, settings.log_format)
    redact_server_logs()
    messaging_on = dependencies is None if messaging is None else messaging
    app = FastAPI(
        title="ACR BFF",
        version="0.1.0",
        description="Rider API, websocket push and ops API.",
        lifespan=_lifespan(settings, dependencies, messaging_on),
    )
    if dependencies is not None:
        app.state.bff = build_state(settings, dependencies)
    install_error_handlers(app)

    @app.exception_handler(BffError)
    async def _bff_error(_: Request, exc: BffError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    app.include_router(ops.internal)
    app.include_router(api.router)
    app.include_router(ops.router)
    app.include_router(ws.router)
    _install_pages(app)
    return app
