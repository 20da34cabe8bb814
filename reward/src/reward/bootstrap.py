"""The composition root: the one place that wires adapters to the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from acr import logs
from acr.runtime import Messaging
from acr.settings import get_settings
from acr.web import install_error_handlers, install_ops_routes
from reward.adapters.dynamo import DynamoLoyaltyView, DynamoRewardUnitOfWork
from reward.api import router
from reward.handlers import consumer
from reward.ports import LoyaltyView
from reward.topology import RIDERS, TOPOLOGY


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    messaging = Messaging(TOPOLOGY, settings)
    app.state.loyalty = DynamoLoyaltyView(messaging.dynamodb, RIDERS)
    app.state.messaging = messaging
    messaging.consume("events", consumer(lambda: DynamoRewardUnitOfWork(messaging.unit_of_work())))
    messaging.start()
    yield
    messaging.stop()


def create_app(loyalty: LoyaltyView | None = None) -> FastAPI:
    """The app; tests pass a ``loyalty`` view built from fakes and get no lifespan wiring."""
    settings = get_settings()
    logs.configure("reward", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR reward", version="0.1.0", lifespan=None if loyalty else lifespan)
    if loyalty:
        app.state.loyalty = loyalty
    install_error_handlers(app)
    install_ops_routes(app, "reward")
    app.include_router(router)
    return app
