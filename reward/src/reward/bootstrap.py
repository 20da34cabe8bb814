"""The composition root of reward: its adapters, and how they are put together (in tests, with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from acr.catalog.base import bus_name
from acr.projection_store import DynamoCopies, DynamoPointers, EventBridgeArchive, SqsRebuildQueue
from acr.projections import Projection, Projections, Rebuild
from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from acr.topology.plan import plan
from reward.adapters.dynamo import (
    DynamoRewardUnitOfWork,
    DynamoRiderStats,
    DynamoStatsUnitOfWork,
    live_copies,
    rebuild_copies,
)
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
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoRewardUnitOfWork(messaging.unit_of_work()),
        stats_unit_of_work=lambda: DynamoStatsUnitOfWork(
            messaging.unit_of_work(marked=False), live_copies(stats)
        ),
        rebuild_unit_of_work=lambda: DynamoStatsUnitOfWork(
            messaging.unit_of_work(marked=False), rebuild_copies(stats)
        ),
        stats=DynamoRiderStats(messaging.dynamodb, stats),
        projections=stats_projections(messaging, stats),
    )


def stats_projections(messaging: Messaging, stats: Projection) -> Projections:
    """The rider stats, rebuilt from the ``acr-reward`` archive through the rebuild queue's rule."""
    slice_plan = plan([TOPOLOGY])[0]
    declared = next(t for t in TOPOLOGY.tables if t.name == RIDER_STATS)
    rebuild_route = next(r for r in slice_plan.routes if r.queue == TOPOLOGY.queue(STATS_REBUILD))
    assert slice_plan.archive is not None and TOPOLOGY.context is not None
    archive = EventBridgeArchive(
        messaging.events, slice_plan.archive.name, bus_name(TOPOLOGY.context), rebuild_route.rule
    )
    queue = SqsRebuildQueue(messaging.sqs, messaging.queue_url(TOPOLOGY.queue(STATS_REBUILD)))
    pointers = DynamoPointers(messaging.dynamodb, PROJECTIONS)
    projections = Projections()
    projections.add(
        stats,
        lambda: Rebuild(
            stats,
            pointers,
            DynamoCopies(messaging.dynamodb, declared),
            archive,
            queue,
            owner=messaging.settings.replica,
        ),
    )
    return projections


SERVICE = Service("reward", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
