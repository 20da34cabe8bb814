"""The composition root of car-simulator: its adapters, and how they are put together (in tests, with fakes).

The cars are stored in DynamoDB (``acr-car-simulator-cars``): on start every car with a row continues from
it (its ride, leg, progress on the leg and position, as last saved), and a car without one starts IDLE at
the shared fleet's seeded position (``seed_fleet``). The inbox markers are committed with the rows, so a
fleet event consumed before a restart is neither applied twice nor lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from acr.catalog.base import TELEMETRY_STREAM
from acr.fleet import FleetCar, seed_fleet
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
from acr_city import load_city
from car_simulator.adapters.dynamo import DynamoCarStore, DynamoCarUnitOfWork
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.adapters.roads import CityRoads
from car_simulator.api import SimulatorState, router
from car_simulator.domain import Car, Snapshot, initial_battery
from car_simulator.handlers import CarSimulator, ProgressSaver, SimulationLoop, handlers
from car_simulator.ports import CarStore, Roads, TelemetryPublisher, UnitOfWork
from car_simulator.simulation import Simulation
from car_simulator.topology import TOPOLOGY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    cars: CarStore
    roads: Roads
    fleet: Sequence[FleetCar]
    telemetry: TelemetryPublisher


def start_simulation(settings: Settings, fleet: Sequence[FleetCar], stored: Iterable[Snapshot]) -> Simulation:
    """The fleet as stored (a car without a row: IDLE at its seeded position), every car reported at the
    first tick."""
    rows = {snapshot.car.car_id: snapshot.car for snapshot in stored}
    cars = [
        rows.get(c.car_id) or Car(c.car_id, c.lat, c.lon, battery=initial_battery(settings.seed, c.car_id))
        for c in fleet
    ]
    riding = sum(1 for car in cars if car.ride_id is not None)
    log.info("%d of %d cars restored from their rows, %d with a ride", len(rows), len(cars), riding)
    # Simulated time = wall time x speed, so it keeps growing across a restart of the simulator and
    # readers that order a car's records by simulated time never see it jump back.
    now = time.time()
    simulation = Simulation(cars, settings.sim_speed, wall_start=now, sim_start_s=now * settings.sim_speed)
    simulation.report_all()
    return simulation


def assemble(runtime: Runtime, adapters: Adapters) -> SimulatorState:
    simulator = CarSimulator(start_simulation(runtime.settings, adapters.fleet, adapters.cars.load()))
    table = handlers(simulator=simulator, roads=adapters.roads, boarding_s=runtime.settings.boarding_s)
    adapters.consumers.consume("events", table, adapters.unit_of_work)
    saver = ProgressSaver(simulator, adapters.cars, runtime.settings.car_save_every_s)
    runtime.loops.add("simulation", SimulationLoop(simulator, adapters.telemetry.buffer).run)
    runtime.loops.add("telemetry-publisher", adapters.telemetry.run)
    runtime.loops.add("car-saver", saver.run)
    runtime.loops.on_stop(adapters.telemetry.wake)
    return SimulatorState(simulator, adapters.telemetry, saver)


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
        unit_of_work=lambda: DynamoCarUnitOfWork(messaging.unit_of_work()),
        cars=DynamoCarStore(messaging.dynamodb),
        roads=CityRoads(city),
        fleet=fleet,
        telemetry=KinesisPublisher(messaging.kinesis(), TELEMETRY_STREAM, TelemetryBuffer()),
    )


SERVICE = Service("car-simulator", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
