"""The composition root of car-dispatcher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from acr import logs
from acr.catalog.base import TELEMETRY_STREAM
from acr.fleet import seed_fleet
from acr.runtime import Messaging
from acr.settings import get_settings
from acr.web import install_error_handlers, install_ops_routes
from acr_city import load_city
from car_dispatcher.adapters.dynamo import DynamoFleetUnitOfWork, save_positions, seed_cars
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.adapters.roads import CityRoads
from car_dispatcher.api import router
from car_dispatcher.handlers import Dispatcher
from car_dispatcher.telemetry import PositionTracker
from car_dispatcher.topology import CHECKPOINTS, TOPOLOGY

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    messaging = Messaging(TOPOLOGY, settings)
    fleet = seed_fleet(settings.fleet_size, settings.seed, tuple(city.bounds.as_list()), city.snap)
    log.info("fleet of %d cars, %d new in the table", len(fleet), seed_cars(messaging.dynamodb, fleet))

    def uow() -> DynamoFleetUnitOfWork:
        return DynamoFleetUnitOfWork(messaging.unit_of_work())

    live = LiveFleet(city.bounds, uow().cars.all())
    dispatcher = Dispatcher(
        uow=uow, roads=CityRoads(city), fleet=live, max_pickup_eta_s=settings.max_pickup_eta_s
    )
    app.state.dispatcher = dispatcher
    app.state.messaging = messaging
    messaging.consume("events", dispatcher.handle)
    tracker = PositionTracker(
        live,
        lambda positions: save_positions(messaging.dynamodb, positions),
        lambda checkpoint: checkpoint.save(messaging.dynamodb),
    )
    messaging.read_stream("car-dispatcher", TELEMETRY_STREAM, CHECKPOINTS, tracker)
    messaging.start()
    yield
    messaging.stop()


def create_app(dispatcher: Dispatcher | None = None) -> FastAPI:
    """The app; tests pass a ``dispatcher`` built from fakes and get no lifespan wiring."""
    settings = get_settings()
    logs.configure("car-dispatcher", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR car-dispatcher", version="0.1.0", lifespan=None if dispatcher else lifespan)
    if dispatcher:
        app.state.dispatcher = dispatcher
    install_error_handlers(app)
    install_ops_routes(app, "car-dispatcher")
    app.include_router(router)
    return app
