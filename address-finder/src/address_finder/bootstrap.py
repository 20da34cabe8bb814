"""The composition root of address-finder: load the city once, serve it from memory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from acr import logs
from acr.settings import get_settings
from acr.web import install_error_handlers, install_ops_routes
from acr_city import City, load_city
from address_finder.api import router

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    app.state.city = load_city(settings.city, settings.seed, settings.city_cache_dir, progress=log.info)
    log.info(
        "city %s: %d addresses, %d street nodes",
        app.state.city.name,
        app.state.city.address_count,
        app.state.city.node_count,
    )
    yield


def create_app(city: City | None = None) -> FastAPI:
    """The app; tests pass a ``city`` and get no lifespan loading."""
    settings = get_settings()
    logs.configure("address-finder", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR address-finder", version="0.1.0", lifespan=None if city else lifespan)
    if city:
        app.state.city = city
    install_error_handlers(app)
    install_ops_routes(app, "address-finder")
    app.include_router(router)
    return app
