"""The composition root of car-simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from acr_city import load_city
from fastapi import FastAPI, Request

from acr import logs
from acr.fleet import seed_fleet
from acr.settings import get_settings
from acr.web import install_error_handlers, install_ops_routes


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    app.state.fleet = seed_fleet(settings.fleet_size, settings.seed, tuple(city.bounds.as_list()), city.snap)
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure("car-simulator", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR car-simulator", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_ops_routes(app, "car-simulator")

    @app.get("/v1/cars")
    async def cars(request: Request) -> dict[str, Any]:
        return {"cars": [{"carId": c.car_id, "lat": c.lat, "lon": c.lon} for c in request.app.state.fleet]}

    return app
