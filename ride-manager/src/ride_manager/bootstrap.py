"""The composition root of ride-manager: the one place that wires adapters."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from acr import logs
from acr.consumer import idempotent
from acr.runtime import Messaging
from acr.settings import Settings, get_settings
from acr.unit_of_work import Conflict
from acr.web import error_response, install_error_handlers, install_ops_routes
from ride_manager import handlers
from ride_manager.adapters.dynamo import DynamoRideHistory, DynamoRideUnitOfWork
from ride_manager.adapters.http import DependencyUnavailable, HttpDispatch, HttpGeo
from ride_manager.api import domain_error_response, router
from ride_manager.bootstrap_types import Services
from ride_manager.domain import DomainError
from ride_manager.projection import RideHistoryProjector
from ride_manager.timers import DispatchTimer
from ride_manager.topology import TOPOLOGY


def wire(settings: Settings, messaging: Messaging, http: httpx.Client) -> Services:
    """Adapters for the real world."""
    return Services(
        settings=settings,
        uow=lambda: DynamoRideUnitOfWork(messaging.unit_of_work()),
        geo=HttpGeo(http, settings.service_url("address-finder")),
        dispatch=HttpDispatch(http, settings.service_url("car-dispatcher")),
        history=DynamoRideHistory(messaging.dynamodb),
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    messaging = Messaging(TOPOLOGY, settings)
    with httpx.Client(timeout=5.0) as http:
        services = wire(settings, messaging, http)
        app.state.services = services
        app.state.messaging = messaging
        messaging.consume("events", idempotent(services.uow, handlers.EVENT_HANDLERS))
        messaging.consume("history", RideHistoryProjector(messaging.dynamodb), fifo=True)
        timer = DispatchTimer(
            history=services.history, uow_factory=services.uow, timeout_s=settings.dispatch_timeout_s
        )
        stop = threading.Event()
        timer_thread = threading.Thread(target=timer.run, args=(stop,), name="dispatch-timer", daemon=True)
        messaging.start()
        timer_thread.start()
        yield
        stop.set()
        messaging.stop()


def install_domain_errors(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc.code, exc.message)

    @app.exception_handler(DependencyUnavailable)
    async def _dependency(_: Request, exc: DependencyUnavailable) -> JSONResponse:
        return error_response(503, "dependency_unavailable", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, __: Conflict) -> JSONResponse:
        return error_response(409, "concurrent_update", "the ride changed meanwhile; try again")


def create_app(services: Services | None = None) -> FastAPI:
    """The app; tests pass ``services`` built from fakes and get no lifespan wiring."""
    settings = get_settings()
    logs.configure("ride-manager", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR ride-manager", version="0.1.0", lifespan=None if services else lifespan)
    if services:
        app.state.services = services
    install_error_handlers(app)
    install_domain_errors(app)
    install_ops_routes(app, "ride-manager")
    app.include_router(router)
    return app
