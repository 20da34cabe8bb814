"""The composition root of reward: its adapters, and how they are put together (in tests, with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from acr.projection_store import DynamoPointers, archive_rebuild, copies_written
from acr.projections import Projection, Projections
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from reward.adapters.dynamo import DynamoRewardUnitOfWork, DynamoRiderStats, DynamoStatsUnitOfWork
from reward.api import Reward, router
from reward.handlers import HANDLERS
from reward.ports import RiderStats, StatsUnitOfWork, UnitOfWork
from reward.projection import REBUILD_HANDLERS, RIDER_STATS_PROJECTION, STATS_HANDLERS
from reward.topology import PROJECTIONS, RIDER_STATS, STATS, STATS_REBUILD, TOPOLOGY


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    stats_unit_of_work: Callable[[], StatsUnitOfWork]
    rebuild_unit_of_work: Callable[[], StatsUnitOfWork]
    stats: RiderStats
    projections: Projections


def assemble(runtime: Runtime, adapters: Adapters) -> Reward:
    """The payment outcomes' consumer, the rider-stats projector (live and rebuild) and the routes' state."""
    adapters.consumers.consume("events", HANDLERS, adapters.unit_of_work)
    adapters.consumers.consume(STATS, STATS_HANDLERS, adapters.stats_unit_of_work)
    adapters.consumers.consume(STATS_REBUILD, REBUILD_HANDLERS, adapters.rebuild_unit_of_work)
    runtime.projections = adapters.projections  # listed and rebuilt by the kernel's ops routes
    return Reward(stats=adapters.stats)


def aws_adapters(runtime: Runtime) -> Adapters:
    messaging = Messaging(TOPOLOGY, runtime.settings, runtime.loops)
    runtime.messaging = messaging
    stats = Projection(RIDER_STATS_PROJECTION, DynamoPointers(messaging.dynamodb, PROJECTIONS))
    projections = Projections()
    projections.add(stats, archive_rebuild(messaging, stats, RIDER_STATS, STATS_REBUILD, PROJECTIONS))
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoRewardUnitOfWork(messaging.unit_of_work()),
        stats_unit_of_work=lambda: DynamoStatsUnitOfWork(
            messaging.unit_of_work(marked=False), copies_written(stats, RIDER_STATS)
        ),
        rebuild_unit_of_work=lambda: DynamoStatsUnitOfWork(
            messaging.unit_of_work(marked=False), copies_written(stats, RIDER_STATS, rebuilding=True)
        ),
        stats=DynamoRiderStats(messaging.dynamodb, stats),
        projections=projections,
    )


SERVICE = Service("reward", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
