"""The composition root of route-monitor: its adapters, and how they are put together (in tests, with
fakes)."""

from __future__ import annotations

from dataclasses import dataclass

import acr.clock
from acr.catalog.base import TELEMETRY_STREAM
from acr.runtime import Messaging, Streams
from acr.service import Runtime, Service
from acr.settings import Settings
from acr_city import load_city
from route_monitor.adapters.dynamo import DynamoTrackingStore
from route_monitor.adapters.roads import CityRoads
from route_monitor.api import Monitor, ops_router, router
from route_monitor.domain import Rules
from route_monitor.handlers import Clock, TelemetryProcessor, TelemetryStats
from route_monitor.ports import Roads, TrackingStore
from route_monitor.topology import CHECKPOINTS, READER, TOPOLOGY


@dataclass(frozen=True)
class Adapters:
    streams: Streams
    tracking: TrackingStore
    roads: Roads
    clock: Clock = acr.clock.now


def rules_from(settings: Settings) -> Rules:
    return Rules(
        stall_window_s=settings.stall_window_s,
        eta_push_s=settings.eta_push_s,
        handover_s=2 * settings.lease_s,
    )


def assemble(runtime: Runtime, adapters: Adapters) -> Monitor:
    """The telemetry processor, reading the telemetry stream, and what the routes use."""
    stats = TelemetryStats(clock=adapters.clock)
    processor = TelemetryProcessor(
        store=adapters.tracking,
        roads=adapters.roads,
        rules=rules_from(runtime.settings),
        clock=adapters.clock,
        stats=stats,
    )
    adapters.streams.read_stream(READER, TELEMETRY_STREAM, CHECKPOINTS, processor)
    return Monitor(tracking=adapters.tracking, telemetry=stats)


def aws_adapters(runtime: Runtime) -> Adapters:
    settings = runtime.settings
    city = load_city(settings.city, settings.seed, settings.city_cache_dir)
    messaging = Messaging(TOPOLOGY, settings, runtime.loops)
    runtime.messaging = messaging
    return Adapters(
        streams=messaging,
        tracking=DynamoTrackingStore(messaging.dynamodb, messaging.unit_of_work),
        roads=CityRoads(city),
    )


SERVICE = Service(
    "route-monitor", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router, ops_router]
)
