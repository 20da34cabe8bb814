"""The composition root of car-simulator: its adapters, and how they are put together (in tests, with fakes).

The cars live in memory: a restart re-seeds them at the shared fleet's start positions (``seed_fleet``),
IDLE. The inbox markers survive in DynamoDB, so a fleet event consumed before the restart is still not
applied twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acr.catalog.base import TELEMETRY_STREAM
from acr.fleet import FleetCar, seed_fleet
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
from acr_city import load_city
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.adapters.roads import CityRoads
from car_simulator.api import SimulatorState, router
from car_simulator.domain import Car, initial_battery
from car_simulator.handlers import CarSimulator, SimulationLoop, handlers
from car_simulator.ports import Roads, TelemetryPublisher, UnitOfWork
from car_simulator.simulation import Simulation
from car_simulator.topology import TOPOLOGY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    roads: Roads
    fleet: Sequence[FleetCar]
    telemetry: TelemetryPublisher


def start_simulation(settings: Settings, fleet: Sequence[FleetCar]) -> Simulation:
    """The fleet at its start positions, IDLE."""
    cars = [Car(c.car_id, c.lat, c.lon, battery=initial_battery(settings.seed, c.car_id)) for c in fleet]
    # Simulated time = wall time x speed, so it keeps growing across a restart of the simulator and
    # readers that order a car's records by simulated time never see it jump back.
    now = time.time()
    return Simulation(cars, settings.sim_speed, wall_start=now, sim_start_s=now * settings.sim_speed)


def assemble(runtime: Runtime, adapters: Adapters) -> SimulatorState:
    simulator = CarSimulator(start_simulation(runtime.settings, adapters.fleet))
    table = handlers(simulator=simulator, roads=adapters.roads, boarding_s=runtime.settings.boarding_s)
    adapters.consumers.consume("events", table, adapters.unit_of_work)
    runtime.loops.add("simulation", SimulationLoop(simulator, adapters.telemetry.buffer).run)
    runtime.loops.add("telemetry-publisher", adapters.telemetry.run)
    runtime.loops.on_stop(adapters.telemetry.wake)
    return SimulatorState(simulator, adapters.telemetry)


def aws_adapters(runtime: Runtime) -> Adapters:
    settings = runtime.settings
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    b = city.bounds
    fleet = seed_fleet(
        settings.fleet_size, settings.seed, (b.min_lon, b.min_lat, b.max_lon, b.max_lat), city.snap
    )
    messaging = Messaging(TOPOLOGY, settings, runtime.loops)
    runtime.messaging = messaging
    log.info("%d cars on %s at sim speed %s", len(fleet), city.name, settings.sim_speed)
    return Adapters(
        consumers=messaging,
        unit_of_work=messaging.unit_of_work,
        roads=CityRoads(city),
        fleet=fleet,
        telemetry=KinesisPublisher(messaging.kinesis(), TELEMETRY_STREAM, TelemetryBuffer()),
    )


SERVICE = Service("car-simulator", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
