"""The composition root of car-simulator.

The cars live in memory: a restart re-seeds them at the shared fleet's start positions (``seed_fleet``),
IDLE, and the simulated clock restarts at 0. The inbox markers survive in DynamoDB, so a fleet event
consumed before the restart is still not applied twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from acr import logs
from acr.catalog.base import TELEMETRY_STREAM
from acr.fleet import seed_fleet
from acr.runtime import Messaging
from acr.settings import Settings, get_settings
from acr.web import install_error_handlers, install_ops_routes
from acr_city import load_city
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.adapters.roads import CityRoads
from car_simulator.api import router
from car_simulator.domain import Car, initial_battery
from car_simulator.handlers import CarSimulator, SimulationLoop
from car_simulator.ports import Inbox, Roads
from car_simulator.simulation import Simulation
from car_simulator.topology import TOPOLOGY

log = logging.getLogger(__name__)


def build_simulator(
    settings: Settings, roads: Roads, positions: list[tuple[str, float, float]], inbox: Callable[[], Inbox]
) -> CarSimulator:
    """The fleet at its start positions, the simulated clock at 0."""
    cars = [
        Car(car_id, lat, lon, battery=initial_battery(settings.seed, car_id))
        for car_id, lat, lon in positions
    ]
    # Simulated time = wall time x speed, so it keeps growing across a restart of the simulator and
    # readers that order a car's records by simulated time never see it jump back.
    now = time.time()
    simulation = Simulation(cars, settings.sim_speed, wall_start=now, sim_start_s=now * settings.sim_speed)
    return CarSimulator(simulation=simulation, roads=roads, boarding_s=settings.boarding_s, inbox=inbox)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    fleet = seed_fleet(settings.fleet_size, settings.seed, tuple(city.bounds.as_list()), city.snap)
    messaging = Messaging(TOPOLOGY, settings)
    app.state.messaging = messaging
    simulator = build_simulator(
        settings, CityRoads(city), [(c.car_id, c.lat, c.lon) for c in fleet], messaging.unit_of_work
    )
    publisher = KinesisPublisher(messaging.client("kinesis"), TELEMETRY_STREAM, TelemetryBuffer())
    app.state.simulator, app.state.publisher = simulator, publisher
    messaging.consume("events", simulator.handler())
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=SimulationLoop(simulator, publisher.buffer).run,
            args=(stop,),
            name="simulation",
            daemon=True,
        ),
        threading.Thread(target=publisher.run, args=(stop,), name="telemetry-publisher", daemon=True),
    ]
    for thread in threads:
        thread.start()
    messaging.start()
    log.info("%d cars on %s at sim speed %s", len(fleet), city.name, settings.sim_speed)
    yield
    stop.set()
    messaging.stop()
    for thread in threads:
        thread.join(5.0)


def create_app(simulator: CarSimulator | None = None, publisher: KinesisPublisher | None = None) -> FastAPI:
    """The app; tests pass a ``simulator`` and a ``publisher`` built from fakes and get no lifespan wiring."""
    settings = get_settings()
    logs.configure("car-simulator", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR car-simulator", version="0.1.0", lifespan=None if simulator else lifespan)
    if simulator:
        app.state.simulator = simulator
        app.state.publisher = publisher or KinesisPublisher(None, TELEMETRY_STREAM, TelemetryBuffer())
    install_error_handlers(app)
    install_ops_routes(app, "car-simulator")
    app.include_router(router)
    return app
