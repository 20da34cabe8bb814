"""Declarations: buses, subscriptions (a rule on the producer's bus -> own queue + DLQ), tables, streams."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from acr.catalog import BY_MODEL
from acr.catalog.base import CONTEXT_SERVICE, EventData, EventSpec, bus_name

ENTRY_POINT_GROUP = "acr.topology"


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    sort_key_type: Literal["S", "N"] = "S"


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    sort_key: str | None = None
    sort_key_type: Literal["S", "N"] = "S"
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None

    def definition(self) -> dict[str, Any]:
        """The table as DynamoDB's ``CreateTable`` takes it, which is also the CloudFormation resource's
        properties: on-demand, its keys and its global secondary indexes (all attributes projected)."""
        attributes = {self.partition_key: "S"}
        key = [{"AttributeName": self.partition_key, "KeyType": "HASH"}]
        if self.sort_key:
            attributes[self.sort_key] = self.sort_key_type
            key.append({"AttributeName": self.sort_key, "KeyType": "RANGE"})
        indexes = []
        for index in self.indexes:
            attributes[index.partition_key] = "S"
            index_key = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
            if index.sort_key:
                attributes[index.sort_key] = index.sort_key_type
                index_key.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
            indexes.append(
                {"IndexName": index.name, "KeySchema": index_key, "Projection": {"ProjectionType": "ALL"}}
            )
        definition: dict[str, Any] = {
            "TableName": self.name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
            "KeySchema": key,
        }
        if indexes:
            definition["GlobalSecondaryIndexes"] = indexes
        return definition


@dataclass(frozen=True)
class Subscription:
    """Event types of other contexts, delivered to the service's queue ``acr-<service>-<queue>``.

    ``versions`` pins the schema version the consumer reads for some of its types, as
    ``((Model, 2), ...)``; governance fails when the producer does not publish that version. A type
    without a pin follows the catalog's current version."""

    queue: str
    events: tuple[type[EventData], ...]
    versions: tuple[tuple[type[EventData], int], ...] = ()
    replayed: bool = False
    """Only the events a replay of the producer's archive re-delivers (a read model's rebuild), never the
    live ones."""

    def specs(self) -> list[EventSpec]:
        return [BY_MODEL[model] for model in self.events]

    def version_of(self, model: type[EventData]) -> int:
        """The version the consumer reads: its pin, else the catalog's."""
        return dict(self.versions).get(model, BY_MODEL[model].version)


@dataclass(frozen=True)
class TopicSubscription:
    """A FIFO queue ``acr-<service>-<queue>.fifo`` subscribed (raw delivery) to the FIFO topic the catalog
    publishes ``event`` on."""

    queue: str
    event: type[EventData]

    @property
    def topic(self) -> str:
        destination = BY_MODEL[self.event].destination
        if destination.kind != "topic":
            raise ValueError(f"{self.event.__name__} is published on {destination}, not on a topic")
        return destination.name


@dataclass(frozen=True)
class Stream:
    name: str
    shards: int = 1


@dataclass(frozen=True)
class ServiceTopology:
    """One service's slice of the messaging topology."""

    service: str
    context: str | None = None
    publishes: tuple[type[EventData], ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    topic_subscriptions: tuple[TopicSubscription, ...] = ()
    tables: tuple[Table, ...] = ()
    streams: tuple[Stream, ...] = ()
    inbox: bool | None = None
    reads: tuple[type[EventData], ...] = ()
    """Event types the service reads from the Kinesis stream the catalog publishes them on."""
    leases: bool = False
    """A lease table (``acr-<service>-leases``, ``acr.leases``): for stream shards and singleton jobs."""
    per_replica: bool = False
    """Every replica must receive every message of the subscriptions (push to the clients connected to it):
    each replica creates its own copy of each delivery at start (``acr.topology.replicas``), so ``apply``
    and the exported stacks create none of them."""

    @property
    def bus(self) -> str | None:
        return bus_name(self.context) if self.context else None

    @property
    def deploy_context(self) -> str:
        """The bounded context whose account runs the service: its publishing context, else the context
        it speaks for (``CONTEXT_SERVICE``), else the service itself."""
        if self.context:
            return self.context
        speaks_for = [context for context, service in CONTEXT_SERVICE.items() if service == self.service]
        return speaks_for[0] if speaks_for else self.service

    @property
    def read_streams(self) -> tuple[str, ...]:
        """The Kinesis streams behind ``reads``."""
        return tuple(sorted({BY_MODEL[model].destination.name for model in self.reads}))

    @property
    def topics(self) -> tuple[str, ...]:
        """The FIFO topics this service owns: those the catalog publishes its events on."""
        destinations = {BY_MODEL[model].destination for model in self.publishes}
        return tuple(sorted(d.name for d in destinations if d.kind == "topic"))

    @property
    def has_outbox(self) -> bool:
        return bool(self.publishes)

    @property
    def has_inbox(self) -> bool:
        """Consumers that change state keep idempotency markers; a push-only consumer needs none."""
        return bool(self.subscriptions) if self.inbox is None else self.inbox

    def table(self, short: str) -> str:
        return f"acr-{self.service}-{short}"

    @property
    def outbox_table(self) -> str:
        return self.table("outbox")

    @property
    def inbox_table(self) -> str:
        return self.table("inbox")

    @property
    def leases_table(self) -> str:
        return self.table("leases")

    @property
    def producer_dlq(self) -> str:
        return f"acr-{self.service}-producer-dlq"

    def queue(self, short: str, fifo: bool = False) -> str:
        return f"acr-{self.service}-{short}" + (".fifo" if fifo else "")

    def dlq(self, short: str, fifo: bool = False) -> str:
        return f"acr-{self.service}-{short}-dlq" + (".fifo" if fifo else "")

    def all_tables(self) -> list[Table]:
        """Declared tables plus the outbox, inbox and lease table the messaging patterns need."""
        tables = list(self.tables)
        if self.has_outbox:
            tables.append(
                Table(
                    self.outbox_table,
                    "eventId",
                    indexes=(
                        Index("pending-index", "pending", "createdAt", "N"),
                        Index("subject-index", "subject", "createdAt", "N"),  # one aggregate's events
                    ),
                    ttl_attribute="expiresAt",
                )
            )
        if self.has_inbox:
            tables.append(Table(self.inbox_table, "dedupKey", ttl_attribute="expiresAt"))
        if self.leases:
            tables.append(lease_table(self.leases_table))
        return tables

    def all_queues(self) -> list[tuple[str, str, bool]]:
        """(queue, dlq, fifo) for every subscription."""
        queues = [(self.queue(s.queue), self.dlq(s.queue), False) for s in self.subscriptions]
        queues += [
            (self.queue(t.queue, True), self.dlq(t.queue, True), True) for t in self.topic_subscriptions
        ]
        return queues


def lease_table(name: str) -> Table:
    """A lease table (``acr.leases``): by lease key, and the leases of one kind through ``kind-index``."""
    return Table(name, "leaseKey", indexes=(Index("kind-index", "kind", "leaseKey"),))


def discover() -> list[ServiceTopology]:
    """Every installed service's slice, found through the ``acr.topology`` entry point group."""
    slices = [ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return sorted(slices, key=lambda s: s.service)
