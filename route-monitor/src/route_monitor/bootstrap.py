"""The composition root of route-monitor."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from acr import logs
from acr.catalog.base import TELEMETRY_STREAM
from acr.runtime import Messaging
from acr.settings import get_settings
from acr.web import install_error_handlers, install_ops_routes
from acr_city import load_city
from route_monitor.adapters.dynamo import DynamoTrackingStore
from route_monitor.adapters.roads import CityRoads
from route_monitor.api import router
from route_monitor.handlers import Monitor, TelemetryProcessor, rules_from
from route_monitor.topology import CHECKPOINTS, READER, TOPOLOGY

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    messaging = Messaging(TOPOLOGY, settings)
    store = DynamoTrackingStore(messaging.dynamodb, messaging.unit_of_work)
    processor = TelemetryProcessor(store=store, roads=CityRoads(city), rules=rules_from(settings))
    app.state.monitor = Monitor(store=store, processor=processor)
    app.state.messaging = messaging
    messaging.read_stream(READER, TELEMETRY_STREAM, CHECKPOINTS, processor)
    messaging.start()
    yield
    messaging.stop()


def create_app(monitor: Monitor | None = None) -> FastAPI:
    """The app; tests pass a ``monitor`` built from fakes and get no lifespan wiring."""
    settings = get_settings()
    logs.configure("route-monitor", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR route-monitor", version="0.1.0", lifespan=None if monitor else lifespan)
    if monitor:
        app.state.monitor = monitor
    install_error_handlers(app)
    install_ops_routes(app, "route-monitor")
    app.include_router(router)
    return app
