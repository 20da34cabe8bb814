"""The composition root of car-dispatcher: its adapters, and how they are put together (in tests, with
fakes).

Under several replicas each one reads the telemetry shards it leases and watches the others
(``telemetry.moved``), and reads the cars table every ``SYNC_EVERY_S`` (``FleetSync``): its live view covers
the whole fleet, and the conditional reservation decides between replicas."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from acr.catalog.base import TELEMETRY_STREAM
from acr.fleet import seed_fleet
from acr.runtime import Consumers, Messaging, Streams
from acr.service import Runtime, Service
from acr_city import load_city
from car_dispatcher.adapters.dynamo import DynamoFleetUnitOfWork, DynamoPositions, all_cars, seed_cars
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.adapters.roads import CityRoads
from car_dispatcher.api import CarDispatcher, fleet_router, ops_router, router
from car_dispatcher.domain import Car
from car_dispatcher.handlers import DispatchControl, handlers
from car_dispatcher.ports import FleetView, Positions, Roads, UnitOfWork
from car_dispatcher.telemetry import FleetSync, PositionTracker, moved
from car_dispatcher.topology import CHECKPOINTS, TOPOLOGY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    streams: Streams
    unit_of_work: Callable[[], UnitOfWork]
    roads: Roads
    fleet: FleetView
    positions: Positions
    cars: Callable[[], list[Car]]  # every car as the table holds it


def assemble(runtime: Runtime, adapters: Adapters) -> CarDispatcher:
    """The events consumer and the telemetry reader, subscribed; the routes' state."""
    dispatcher = CarDispatcher(
        unit_of_work=adapters.unit_of_work,
        roads=adapters.roads,
        fleet=adapters.fleet,
        control=DispatchControl(),
        max_pickup_eta_s=runtime.settings.max_pickup_eta_s,
    )
    table = handlers(
        roads=dispatcher.roads,
        fleet=dispatcher.fleet,
        control=dispatcher.control,
        max_pickup_eta_s=dispatcher.max_pickup_eta_s,
    )
    adapters.consumers.consume("events", table, adapters.unit_of_work)
    tracker = PositionTracker(
        adapters.fleet, adapters.positions.save_positions, adapters.positions.save_checkpoint
    )
    adapters.streams.read_stream(
        "car-dispatcher", TELEMETRY_STREAM, CHECKPOINTS, tracker, watcher=partial(moved, adapters.fleet)
    )
    runtime.loops.add("fleet-sync", FleetSync(adapters.fleet, adapters.cars).run)
    return dispatcher


def aws_adapters(runtime: Runtime) -> Adapters:
    """The city's roads, the seeded fleet in DynamoDB and its live view, the messaging."""
    settings = runtime.settings
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    messaging = Messaging(TOPOLOGY, settings, runtime.loops)
    runtime.messaging = messaging
    b = city.bounds
    fleet = seed_fleet(
        settings.fleet_size, settings.seed, (b.min_lon, b.min_lat, b.max_lon, b.max_lat), city.snap
    )
    log.info("fleet of %d cars, %d new in the table", len(fleet), seed_cars(messaging.dynamodb, fleet))
    return Adapters(
        consumers=messaging,
        streams=messaging,
        unit_of_work=lambda: DynamoFleetUnitOfWork(messaging.unit_of_work()),
        roads=CityRoads(city),
        fleet=LiveFleet(city.bounds, all_cars(messaging.dynamodb)),
        positions=DynamoPositions(messaging.dynamodb),
        cars=lambda: all_cars(messaging.dynamodb),
    )


SERVICE = Service(
    "car-dispatcher",
    lambda runtime: assemble(runtime, aws_adapters(runtime)),
    routers=[router, fleet_router, ops_router],
)
