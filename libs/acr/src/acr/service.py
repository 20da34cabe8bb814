"""One skeleton for every service: the app, its settings and logging, its errors, its ops routes, and
the background loops started with the app and stopped (and joined) with it.

A service declares a ``Service``: its name, its routers and its ``wire`` function, which builds the
service's state from a ``Runtime`` (settings, loops, messaging) and registers its loops. Tests pass
another ``wire`` built from fakes: the same lifespan runs, loops included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI, Request

from acr import aws, logs, metrics, trace_export
from acr.body_limit import BodyLimit
from acr.contract import document_errors
from acr.identity import ServiceCredentials
from acr.leases import LeaseTable, singleton
from acr.loops import Loop, Loops
from acr.projections import Projections
from acr.settings import Settings
from acr.topology.services import secret_settings
from acr.web import OpsMessaging, install_error_handlers, install_metrics_route, install_ops_routes

S = TypeVar("S")


@dataclass
class Runtime:
    """What a service's wiring is given: its settings, its loops, and the app's event loop (for work a
    loop thread hands to the app, e.g. a websocket push). A wiring with a messaging slice sets
    ``messaging`` (the ops routes read its DLQs and its outbox) and, with a lease table, ``leases`` (its
    singleton jobs run on one replica at a time); one with read models adds them to ``projections`` (the
    ops routes list and rebuild them); one that opens async resources (an HTTP client) closes them with
    ``on_close``. ``credentials`` sign its calls to other services (``credentials.auth(callee)``) and check
    its callers; made from the settings, they refuse to start a service that lacks its key."""

    service: str
    settings: Settings
    event_loop: asyncio.AbstractEventLoop
    loops: Loops = field(default_factory=Loops)
    messaging: OpsMessaging | None = None
    leases: LeaseTable | None = None
    projections: Projections = field(default_factory=Projections)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    credentials: ServiceCredentials = field(init=False)

    def __post_init__(self) -> None:
        self.credentials = ServiceCredentials.of(self.service, self.settings)

    def singleton(self, name: str, job: Loop) -> None:
        """Run ``job`` (a timer, a deadline sweep) on one replica of the service at a time: the one holding
        the lease ``job#<name>`` in ``leases`` (``acr.leases.singleton``). Without a lease table (a wiring
        with fakes: one process) it is a plain loop."""
        self.loops.add(name, job if self.leases is None else singleton(self.leases, name, job))

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Await ``close`` when the app stops, after every loop has stopped (last registered, first)."""
        self._closers.append(close)

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()


Wire = Callable[[Runtime], S]


@dataclass(frozen=True)
class Service(Generic[S]):
    """A service: its name (folder name, e.g. ``ride-manager``), the function that wires it, its routes."""

    name: str
    wire: Wire[S]
    routers: Sequence[APIRouter] = ()
    extend: Callable[[FastAPI], None] | None = None  # what only this app has (e.g. the BFF's pages)

    def app(self, *, settings: Settings | None = None, wire: Wire[S] | None = None) -> FastAPI:
        """The FastAPI app. Settings come from the environment when the app starts, unless given; those
        of the environment have their Secrets Manager secrets read, and a weak secret outside the embedded
        stack stops the start (``acr.aws.resolve_secrets``)."""
        app = FastAPI(
            title=f"ACR {self.name}", version="0.1.0", lifespan=self._lifespan(settings, wire or self.wire)
        )
        install_error_handlers(app)
        app.add_middleware(BodyLimit)
        for router in self.routers:
            app.include_router(router)
        own_health = any(
            getattr(r, "path", None) == "/healthz" for router in self.routers for r in router.routes
        )
        install_ops_routes(app, self.name, health=not own_health)  # the BFF's /healthz asks every service
        install_metrics_route(app)
        if self.extend is not None:
            self.extend(app)
        trace_export.instrument_app(app, self.name)  # the process's tracer provider, named after the service
        document_errors(app)  # the kernel's refusals and the one error body in every route's OpenAPI
        return app

    def _lifespan(self, settings: Settings | None, wire: Wire[S]) -> Callable[[FastAPI], Any]:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            started = settings
            if started is None:  # from the environment: Secrets Manager read, weak secrets refused
                started = await asyncio.to_thread(aws.resolve_secrets, Settings(), secret_settings(self.name))
            runtime = Runtime(self.name, started, asyncio.get_running_loop())
            logs.configure(self.name, runtime.settings.log_level, runtime.settings.log_format)
            app.state.credentials = runtime.credentials
            app.state.service = await asyncio.to_thread(wire, runtime)
            app.state.settings = runtime.settings
            app.state.messaging = runtime.messaging
            app.state.projections = runtime.projections
            app.state.metrics = metrics.service_registry(self.name, runtime.messaging)
            await asyncio.to_thread(runtime.loops.start)
            try:
                yield
            finally:
                await asyncio.to_thread(runtime.loops.stop)
                await runtime.close()

        return lifespan


def service_state(request: Request) -> Any:
    """The state the service's wiring built; routes declare its type: ``Annotated[T, Depends(...)]``."""
    return request.app.state.service
