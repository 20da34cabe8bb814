"""The composition root of ride-manager: its adapters and how they are put together (in tests, with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from acr.projection_store import DynamoPointers, archive_rebuild, copies_written
from acr.projections import Projection, Projections
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
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
    projections = Projections()
    projections.add(history, archive_rebuild(messaging, history, RIDE_HISTORY, HISTORY_REBUILD, PROJECTIONS))
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoRideUnitOfWork(messaging.unit_of_work()),
        history_unit_of_work=lambda: DynamoHistoryUnitOfWork(
            messaging.unit_of_work(marked=False), copies_written(history, RIDE_HISTORY)
        ),
        rebuild_unit_of_work=lambda: DynamoHistoryUnitOfWork(
            messaging.unit_of_work(marked=False), copies_written(history, RIDE_HISTORY, rebuilding=True)
        ),
        history=DynamoRideHistory(messaging.dynamodb, history),
        projections=projections,
        geo=HttpGeo(geo_http, settings.service_url("address-finder")),
        dispatch=HttpDispatch(dispatch_http, settings.service_url("car-dispatcher")),
    )


SERVICE = Service(
    "ride-manager", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router, ops_router]
)
