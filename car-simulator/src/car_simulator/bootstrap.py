"""The composition root of car-simulator: its adapters, and how they are put together (in tests, with
fakes).

The fleet (``seed_fleet``, the same in every replica) is split into ``CAR_GROUPS`` groups leased in
``acr-car-simulator-leases`` (keys ``cars#<n>``, ``LeasedKeys``: each live replica holds a fair share).
On gaining a group the replica reads its cars' rows (``acr-car-simulator-cars``) and drives them on from
there (a car without a row starts IDLE at its seeded position); on losing one it saves them and stops.
The fleet events are posted to the groups' mailboxes (``acr-car-simulator-commands``) with their inbox
markers, so an event consumed before a restart is neither posted twice nor lost, and the replica
driving the car applies it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acr.catalog.base import TELEMETRY_STREAM
from acr.fleet import FleetCar, seed_fleet
from acr.leases import LeasedKeys, LeaseTable
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
from acr_city import load_city
from car_simulator.adapters.dynamo import DynamoCarStore, DynamoCarUnitOfWork, DynamoMailbox
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.adapters.roads import CityRoads
from car_simulator.api import SimulatorState, ops_router, router
from car_simulator.domain import GROUPS
from car_simulator.handlers import (
    CarSimulator,
    CommandApplier,
    Fleet,
    FleetGroups,
    ProgressSaver,
    SimulationLoop,
    handlers,
)
from car_simulator.ports import CarStore, Mailbox, Roads, TelemetryPublisher, UnitOfWork
from car_simulator.simulation import Simulation
from car_simulator.topology import TOPOLOGY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    cars: CarStore
    mailbox: Mailbox
    leases: LeaseTable
    roads: Roads
    fleet: Sequence[FleetCar]
    telemetry: TelemetryPublisher


def empty_simulation(settings: Settings) -> Simulation:
    """No car yet (they come with the groups this replica gains). Simulated time = wall time x speed, so
    it keeps growing across restarts and replicas: readers that order a car's records by simulated time
    never see it jump back when its group moves."""
    now = time.time()
    return Simulation([], settings.sim_speed, wall_start=now, sim_start_s=now * settings.sim_speed)


def assemble(runtime: Runtime, adapters: Adapters) -> SimulatorState:
    settings = runtime.settings
    simulator = CarSimulator(empty_simulation(settings))
    cars = {car.car_id: car for car in adapters.fleet}
    groups = FleetGroups(simulator, adapters.cars, cars, settings.seed)
    applier = CommandApplier(
        simulator, adapters.mailbox, adapters.unit_of_work, groups.held, adapters.roads, settings.boarding_s
    )
    fleet = Fleet(cars, posted=applier.posted)
    adapters.consumers.consume("events", handlers(fleet=fleet), adapters.unit_of_work)
    saver = ProgressSaver(simulator, adapters.cars, groups.lease_of, settings.car_save_every_s)
    leased = LeasedKeys(adapters.leases, lambda: GROUPS, groups.on_gained, groups.on_lost)
    runtime.loops.add("car-groups", leased.run)
    runtime.loops.add("car-commands", applier.run)
    runtime.loops.add("simulation", SimulationLoop(simulator, adapters.telemetry.buffer).run)
    runtime.loops.add("telemetry-publisher", adapters.telemetry.run)
    runtime.loops.add("car-saver", saver.run)
    runtime.loops.on_stop(adapters.telemetry.wake)
    runtime.loops.on_stop(applier.wake)
    return SimulatorState(
        simulator, adapters.telemetry, saver, groups, applier, adapters.cars, adapters.mailbox, fleet
    )


def aws_adapters(runtime: Runtime) -> Adapters:
    settings = runtime.settings
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    b = city.bounds
    fleet = seed_fleet(
        settings.fleet_size, settings.seed, (b.min_lon, b.min_lat, b.max_lon, b.max_lat), city.snap
    )
    messaging = Messaging(TOPOLOGY, settings, runtime.loops)
    runtime.messaging = messaging
    leases = messaging.leases
    assert leases is not None, "the topology declares the group leases"
    log.info("%d cars on %s at sim speed %s", len(fleet), city.name, settings.sim_speed)
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoCarUnitOfWork(messaging.unit_of_work(), leases),
        cars=DynamoCarStore(messaging.dynamodb, leases),
        mailbox=DynamoMailbox(messaging.dynamodb),
        leases=leases,
        roads=CityRoads(city),
        fleet=fleet,
        telemetry=KinesisPublisher(messaging.kinesis(), TELEMETRY_STREAM, TelemetryBuffer()),
    )


SERVICE = Service(
    "car-simulator", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router, ops_router]
)
