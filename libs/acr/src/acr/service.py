"""One skeleton for every service: the app, its settings and logging, its errors, its ops routes, and
the background loops started with the app and stopped (and joined) with it.

A service declares a ``Service``: its name, its routers and its ``wire`` function, which builds the
service's state from a ``Runtime`` (settings, loops, messaging) and registers its loops. Tests pass
another ``wire`` built from fakes: the same lifespan runs, loops included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI, Request

from acr import logs
from acr.loops import Loops
from acr.settings import Settings
from acr.web import OpsMessaging, install_error_handlers, install_ops_routes

S = TypeVar("S")


@dataclass
class Runtime:
    """What a service's wiring is given: its settings and its loops. A wiring with a messaging slice
    sets ``messaging`` (the ops routes read its DLQs and its outbox)."""

    service: str
    settings: Settings
    loops: Loops = field(default_factory=Loops)
    messaging: OpsMessaging | None = None


Wire = Callable[[Runtime], S]


@dataclass(frozen=True)
class Service(Generic[S]):
    """A service: its name (folder name, e.g. ``ride-manager``), the function that wires it, its routes."""

    name: str
    wire: Wire[S]
    routers: Sequence[APIRouter] = ()
    extend: Callable[[FastAPI], None] | None = None  # what only this app has (e.g. the BFF's pages)

    def app(self, *, settings: Settings | None = None, wire: Wire[S] | None = None) -> FastAPI:
        """The FastAPI app. Settings come from the environment when the app starts, unless given."""
        app = FastAPI(
            title=f"ACR {self.name}", version="0.1.0", lifespan=self._lifespan(settings, wire or self.wire)
        )
        install_error_handlers(app)
        install_ops_routes(app, self.name)
        for router in self.routers:
            app.include_router(router)
        if self.extend is not None:
            self.extend(app)
        return app

    def _lifespan(self, settings: Settings | None, wire: Wire[S]) -> Callable[[FastAPI], Any]:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            runtime = Runtime(self.name, settings or Settings())
            logs.configure(self.name, runtime.settings.log_level, runtime.settings.log_format)
            app.state.service = await asyncio.to_thread(wire, runtime)
            app.state.settings = runtime.settings
            app.state.messaging = runtime.messaging
            await asyncio.to_thread(runtime.loops.start)
            try:
                yield
            finally:
                await asyncio.to_thread(runtime.loops.stop)

        return lifespan


def service_state(request: Request) -> Any:
    """The state the service's wiring built; routes declare its type: ``Annotated[T, Depends(...)]``."""
    return request.app.state.service
