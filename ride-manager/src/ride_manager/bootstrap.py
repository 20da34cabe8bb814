"""The composition root of ride-manager: its adapters and how they are put together (in tests, with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from acr.catalog.base import bus_name
from acr.projection_store import DynamoCopies, DynamoPointers, EventBridgeArchive, SqsRebuildQueue
from acr.projections import Projection, Projections, Rebuild, copy_name
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
from acr.topology.plan import plan
from acr.trace_export import traced
from ride_manager.adapters.dynamo import DynamoHistoryUnitOfWork, DynamoRideHistory, DynamoRideUnitOfWork
from ride_manager.adapters.http import HttpDispatch, HttpGeo
from ride_manager.api import RideManager, ops_router, router
from ride_manager.domain import Deadlines
from ride_manager.handlers import handlers
from ride_manager.ports import Dispatch, Geo, HistoryUnitOfWork, RideHistory, UnitOfWork
from ride_manager.projection import HISTORY_HANDLERS, REBUILD_HANDLERS, RIDE_HISTORY_PROJECTION
from ride_manager.timers import Watchdog
from ride_manager.topology import HISTORY_REBUILD, PROJECTIONS, RIDE_HISTORY, TOPOLOGY


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    history_unit_of_work: Callable[[], HistoryUnitOfWork]
    rebuild_unit_of_work: Callable[[], HistoryUnitOfWork]
    history: RideHistory
    projections: Projections
    geo: Geo
    dispatch: Dispatch


def deadlines(settings: Settings) -> Deadlines:
    """The rides' deadlines, from the settings."""
    return Deadlines(
        dispatch_timeout_s=settings.dispatch_timeout_s,
        sim_speed=settings.sim_speed,
        boarding_s=settings.boarding_s,
        grace_s=settings.ride_grace_s,
        trip_factor=settings.trip_deadline_factor,
        payment_s=settings.payment_deadline_s,
        assignment_wait_s=settings.assignment_wait_s,
    )


def assemble(runtime: Runtime, adapters: Adapters) -> RideManager:
    """The ride events' consumer, the ride history projector, the watchdog and the routes' state."""
    settings = runtime.settings
    rules = deadlines(settings)
    adapters.consumers.consume("events", handlers(rules=rules), adapters.unit_of_work)
    adapters.consumers.consume("history", HISTORY_HANDLERS, adapters.history_unit_of_work, fifo=True)
    adapters.consumers.consume(HISTORY_REBUILD, REBUILD_HANDLERS, adapters.rebuild_unit_of_work)
    watchdog = Watchdog(
        history=adapters.history,
        uow_factory=adapters.unit_of_work,
        rules=rules,
        dispatch=adapters.dispatch,
        settle_s=settings.watchdog_settle_s,
    )
    runtime.singleton("watchdog", watchdog.run)  # one replica at a time: the saga deadlines
    runtime.projections = adapters.projections  # listed and rebuilt by the kernel's ops routes
    return RideManager(
        unit_of_work=adapters.unit_of_work,
        geo=adapters.geo,
        dispatch=adapters.dispatch,
        history=adapters.history,
        quote_ttl_s=settings.quote_ttl_s,
        idempotency_key_ttl_s=settings.idempotency_key_ttl_s,
        rules=rules,
        max_active_rides=settings.max_active_rides,
    )


def aws_adapters(runtime: Runtime) -> Adapters:
    settings = runtime.settings
    messaging = Messaging(TOPOLOGY, settings, runtime.loops)
    runtime.messaging = messaging
    runtime.leases = messaging.leases
    geo_http = traced(httpx.Client(timeout=5.0, auth=runtime.credentials.auth("address-finder")))
    dispatch_http = traced(httpx.Client(timeout=5.0, auth=runtime.credentials.auth("car-dispatcher")))

    async def close_http() -> None:
        geo_http.close()
        dispatch_http.close()

    runtime.on_close(close_http)
    history = Projection(RIDE_HISTORY_PROJECTION, DynamoPointers(messaging.dynamodb, PROJECTIONS))

    def copies(generations: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(copy_name(RIDE_HISTORY, g) for g in generations)

    def rebuild_copy() -> tuple[str, ...]:
        building = history.building()
        return copies(()) if building is None else copies((building,))

    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoRideUnitOfWork(messaging.unit_of_work()),
        history_unit_of_work=lambda: DynamoHistoryUnitOfWork(
            messaging.unit_of_work(marked=False), copies(history.pointer().written)
        ),
        rebuild_unit_of_work=lambda: DynamoHistoryUnitOfWork(
            messaging.unit_of_work(marked=False), rebuild_copy()
        ),
        history=DynamoRideHistory(messaging.dynamodb, history),
        projections=history_projections(messaging, history),
        geo=HttpGeo(geo_http, settings.service_url("address-finder")),
        dispatch=HttpDispatch(dispatch_http, settings.service_url("car-dispatcher")),
    )


def history_projections(messaging: Messaging, history: Projection) -> Projections:
    """The ride history, rebuilt from the ``acr-ride`` archive through the rebuild queue's rule."""
    slice_plan = plan([TOPOLOGY])[0]
    declared = next(t for t in TOPOLOGY.tables if t.name == RIDE_HISTORY)
    rebuild_route = next(r for r in slice_plan.routes if r.queue == TOPOLOGY.queue(HISTORY_REBUILD))
    assert slice_plan.archive is not None and TOPOLOGY.context is not None
    archive = EventBridgeArchive(
        messaging.events, slice_plan.archive.name, bus_name(TOPOLOGY.context), rebuild_route.rule
    )
    queue = SqsRebuildQueue(messaging.sqs, messaging.queue_url(TOPOLOGY.queue(HISTORY_REBUILD)))
    pointers = DynamoPointers(messaging.dynamodb, PROJECTIONS)
    projections = Projections()
    projections.add(
        history,
        lambda: Rebuild(
            history,
            pointers,
            DynamoCopies(messaging.dynamodb, declared),
            archive,
            queue,
            owner=messaging.settings.replica,
        ),
    )
    return projections


SERVICE = Service(
    "ride-manager", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router, ops_router]
)
