"""The resources the slices describe, named once: what ``apply`` creates in one account and what ``export``
writes into one CloudFormation stack per bounded context.

A plan holds no behaviour: ``apply`` walks it with boto3, ``export`` turns it into templates, and the tests
compare what each of them produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acr.catalog import BY_MODEL
from acr.catalog.base import CONTEXT_SERVICE, EventSpec, bus_name
from acr.topology.model import ServiceTopology, Stream, Subscription, Table

DLQ_RETENTION_S = 1_209_600  # 14 days, SQS's longest
MIN_RETENTION_S = 60  # SQS's shortest
VISIBILITY_TIMEOUT_S = 30
ARCHIVE_RETENTION_DAYS = 0
"""Each bus's archive keeps its events indefinitely (0 days): a read model rebuilt from it must see every
event since the first, or the rebuilt copy would lack the oldest rides."""


def rule_pattern(detail_types: list[str] | tuple[str, ...], replayed: bool = False) -> dict[str, Any]:
    """A subscription's event pattern: its detail-types, and either only live events or only the ones an
    archive replays (EventBridge marks those with ``replay-name``). A live subscription never sees a
    replay, so rebuilding a read model re-delivers nothing to the other consumers."""
    return {"detail-type": sorted(detail_types), "replay-name": [{"exists": replayed}]}


@dataclass(frozen=True)
class Archive:
    """The archive of a publishing context's bus: every event its own producer put there."""

    name: str
    bus: str
    source: str
    retention_days: int = ARCHIVE_RETENTION_DAYS

    @property
    def pattern(self) -> dict[str, Any]:
        return {"source": [self.source]}


@dataclass(frozen=True)
class Queue:
    """An SQS queue; a consumer's queue names its DLQ and how many receives it gets before moving there."""

    name: str
    fifo: bool = False
    retention_s: int | None = None
    visibility_timeout_s: int | None = None
    dlq: str | None = None
    max_receives: int | None = None


@dataclass(frozen=True)
class Route:
    """A subscription's rule on one producer's bus: these detail-types go to the consumer's queue."""

    producer: str
    """The producing context (its bus is ``bus``)."""
    bus: str
    rule: str
    detail_types: tuple[str, ...]
    queue: str
    replayed: bool = False
    """The route takes only the events an archive replays (a read model's rebuild), never live ones."""

    @property
    def pattern(self) -> dict[str, Any]:
        return rule_pattern(self.detail_types, self.replayed)


@dataclass(frozen=True)
class Delivery:
    """A consumer's queue and its DLQ, fed by rules on producers' buses (``routes``) or by a topic."""

    queue: Queue
    dlq: Queue
    routes: tuple[Route, ...] = ()
    topic: str | None = None

    @property
    def pattern(self) -> dict[str, Any]:
        """The pattern of the queue's one rule on a bus: every type its routes take."""
        return rule_pattern(
            tuple({t for r in self.routes for t in r.detail_types}), any(r.replayed for r in self.routes)
        )


@dataclass(frozen=True)
class ServicePlan:
    """One slice's resources, in the order ``apply`` creates them."""

    slice: ServiceTopology
    bus: str | None
    archive: Archive | None
    tables: tuple[Table, ...]
    topics: tuple[str, ...]
    streams: tuple[Stream, ...]
    producer_dlq: Queue | None
    deliveries: tuple[Delivery, ...]

    @property
    def service(self) -> str:
        return self.slice.service

    @property
    def context(self) -> str:
        """The bounded context (and account) the service is deployed in."""
        return self.slice.deploy_context

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(route for delivery in self.deliveries for route in delivery.routes)


def plan(slices: list[ServiceTopology], max_receives: int = 10) -> list[ServicePlan]:
    """Every slice's resources."""
    return [_service_plan(s, max_receives) for s in slices]


def _service_plan(s: ServiceTopology, max_receives: int) -> ServicePlan:
    deliveries = [_subscription(s, sub, max_receives) for sub in s.subscriptions]
    deliveries += [
        _delivery(s, ts.queue, True, max_receives, [BY_MODEL[ts.event]], topic=ts.topic)
        for ts in s.topic_subscriptions
    ]
    return ServicePlan(
        slice=s,
        bus=s.bus,
        archive=Archive(f"{s.bus}-archive", s.bus, producer_source(s.context))
        if s.bus and s.context
        else None,
        tables=tuple(s.all_tables()),
        topics=s.topics,
        streams=s.streams,
        producer_dlq=Queue(s.producer_dlq, retention_s=DLQ_RETENTION_S) if s.has_outbox else None,
        deliveries=tuple(deliveries),
    )


def _delivery(
    s: ServiceTopology,
    short: str,
    fifo: bool,
    max_receives: int,
    carries: list[EventSpec],
    *,
    routes: tuple[Route, ...] = (),
    topic: str | None = None,
) -> Delivery:
    dlq = Queue(s.dlq(short, fifo), fifo=fifo, retention_s=DLQ_RETENTION_S)
    queue = Queue(
        s.queue(short, fifo),
        fifo=fifo,
        retention_s=retention_for(carries),
        visibility_timeout_s=VISIBILITY_TIMEOUT_S,
        dlq=dlq.name,
        max_receives=max_receives,
    )
    return Delivery(queue, dlq, routes, topic)


def _subscription(s: ServiceTopology, sub: Subscription, max_receives: int) -> Delivery:
    """One rule per producer bus, ``<service>-<queue>``, matching the subscribed detail-types."""
    by_context: dict[str, list[str]] = {}
    for spec in sub.specs():
        by_context.setdefault(spec.context, []).append(spec.type)
    routes = tuple(
        Route(
            context,
            bus_name(context),
            f"{s.service}-{sub.queue}",
            tuple(sorted(types)),
            s.queue(sub.queue),
            sub.replayed,
        )
        for context, types in sorted(by_context.items())
    )
    return _delivery(s, sub.queue, False, max_receives, sub.specs(), routes=routes)


def retention_for(carries: list[EventSpec]) -> int:
    """How long a queue keeps a message: the longest time-to-live of the types it carries, within what SQS
    allows (a minute to 14 days). A message is dead to its consumers once older than that, so a queue
    never holds it longer. (Its DLQ keeps what reaches it 14 days, for an operator.)"""
    longest = max(spec.ttl_s for spec in carries)
    return max(MIN_RETENTION_S, min(DLQ_RETENTION_S, longest))


def producer_source(context: str) -> str:
    """The CloudEvent (and EventBridge) source of a publishing context's events."""
    return f"acr.{CONTEXT_SERVICE[context]}"


def published_types(slices: list[ServiceTopology]) -> dict[str, str]:
    """Event type -> the deploy context that publishes it."""
    return {BY_MODEL[m].type: s.deploy_context for s in slices for m in s.publishes}
