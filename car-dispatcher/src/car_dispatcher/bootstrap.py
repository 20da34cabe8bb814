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
from acr.projection_store import DynamoPointers, archive_rebuild, copies_written
from acr.projections import Projection, Projections
from acr.runtime import Consumers, Messaging, Streams
from acr.service import Runtime, Service
from acr_city import load_city
from car_dispatcher.adapters.dynamo import (
    DynamoFleetReadModel,
    DynamoFleetUnitOfWork,
    DynamoFleetViewUnitOfWork,
    DynamoPositions,
    all_cars,
    seed_cars,
)
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.adapters.roads import CityRoads
from car_dispatcher.api import CarDispatcher, fleet_router, ops_router, router
from car_dispatcher.domain import Car
from car_dispatcher.handlers import DispatchControl, handlers
from car_dispatcher.ports import (
    FleetReadModel,
    FleetView,
    FleetViewUnitOfWork,
    Positions,
    Roads,
    UnitOfWork,
)
from car_dispatcher.projection import FLEET_PROJECTION, FLEET_VIEW_HANDLERS, REBUILD_HANDLERS
from car_dispatcher.telemetry import FleetSync, PositionTracker, moved
from car_dispatcher.topology import CHECKPOINTS, FLEET, FLEET_REBUILD, FLEET_VIEW, PROJECTIONS, TOPOLOGY

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
    fleet_view_unit_of_work: Callable[[], FleetViewUnitOfWork]
    rebuild_unit_of_work: Callable[[], FleetViewUnitOfWork]
    fleet_view: FleetReadModel
    projections: Projections


def assemble(runtime: Runtime, adapters: Adapters) -> CarDispatcher:
    """The events consumer, the fleet view's projector and the telemetry reader, subscribed; the routes'
    state."""
    dispatcher = CarDispatcher(
        unit_of_work=adapters.unit_of_work,
        roads=adapters.roads,
        fleet=adapters.fleet,
        fleet_view=adapters.fleet_view,
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
    adapters.consumers.consume(FLEET_VIEW, FLEET_VIEW_HANDLERS, adapters.fleet_view_unit_of_work)
    adapters.consumers.consume(FLEET_REBUILD, REBUILD_HANDLERS, adapters.rebuild_unit_of_work)
    tracker = PositionTracker(
        adapters.fleet, adapters.positions.save_positions, adapters.positions.save_checkpoint
    )
    adapters.streams.read_stream(
        "car-dispatcher", TELEMETRY_STREAM, CHECKPOINTS, tracker, watcher=partial(moved, adapters.fleet)
    )
    runtime.loops.add("fleet-sync", FleetSync(adapters.fleet, adapters.cars).run)
    runtime.projections = adapters.projections  # listed and rebuilt by the kernel's ops routes
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

    def unit_of_work() -> UnitOfWork:
        return DynamoFleetUnitOfWork(messaging.unit_of_work())

    added = seed_cars(messaging.dynamodb, unit_of_work, fleet)
    log.info("fleet of %d cars, %d new in the table", len(fleet), added)
    view = Projection(FLEET_PROJECTION, DynamoPointers(messaging.dynamodb, PROJECTIONS))
    projections = Projections()
    projections.add(view, archive_rebuild(messaging, view, FLEET, FLEET_REBUILD, PROJECTIONS))
    return Adapters(
        consumers=messaging,
        streams=messaging,
        unit_of_work=unit_of_work,
        roads=CityRoads(city),
        fleet=LiveFleet(city.bounds, all_cars(messaging.dynamodb)),
        positions=DynamoPositions(messaging.dynamodb),
        cars=lambda: all_cars(messaging.dynamodb),
        fleet_view_unit_of_work=lambda: DynamoFleetViewUnitOfWork(
            messaging.unit_of_work(marked=False), copies_written(view, FLEET)
        ),
        rebuild_unit_of_work=lambda: DynamoFleetViewUnitOfWork(
            messaging.unit_of_work(marked=False), copies_written(view, FLEET, rebuilding=True)
        ),
        fleet_view=DynamoFleetReadModel(messaging.dynamodb, view),
        projections=projections,
    )


SERVICE = Service(
    "car-dispatcher",
    lambda runtime: assemble(runtime, aws_adapters(runtime)),
    routers=[router, fleet_router, ops_router],
)
