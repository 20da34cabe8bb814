"""What every context's published language is made of: the payload base class, places, and the spec that
says where events of a type go.

A type is ``acme.acr.<context>.<EventName>``; its JSON Schema id (``dataschema``) carries the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from acr.clock import iso

Kind = Literal["create", "update", "fact"]

RIDE_UPDATES_TOPIC = "acr-ride-updates.fifo"

# How long an event is worth delivering. A state-changing event keeps SQS's default retention (4 days): an
# outage of days must not lose a step of a ride. An ephemeral fact (an ETA) is worth seconds.
STATE_TTL_S = 345_600
ETA_TTL_S = 30
TELEMETRY_STREAM = "acr-car-telemetry"

# The context that publishes on a bus, a topic or the stream, and the service that speaks for it.
CONTEXT_SERVICE: dict[str, str] = {
    "car": "car-simulator",
    "ride": "ride-manager",
    "fleet": "car-dispatcher",
    "monitoring": "route-monitor",
    "payment": "payment",
    "reward": "reward",
}


def bus_name(context: str) -> str:
    """Each publishing context owns one custom bus."""
    return f"acr-{context}"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a time must carry its UTC offset")
    return moment


Instant = Annotated[datetime, AfterValidator(_aware), PlainSerializer(iso, when_used="json")]
"""A moment in time with its UTC offset; on the wire ISO 8601 in UTC to the millisecond, as ``acr.clock``."""


class EventData(BaseModel):
    """Base of every event payload: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class Place(EventData):
    label: str
    lat: float
    lon: float
    address_id: str | None = None


@dataclass(frozen=True)
class Destination:
    """Where events of a type are published: an EventBridge bus, an SNS FIFO topic or a Kinesis stream."""

    kind: Literal["bus", "topic", "stream"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Destination:
        kind, _, name = text.partition(":")
        if kind not in ("bus", "topic", "stream") or not name:
            raise ValueError(f"bad destination {text!r}")
        return cls(kind, name)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EventSpec:
    """One entry of the catalog. ``kind`` is how the producer means it: a ``create`` happens once per
    aggregate, an ``update`` carries the aggregate's version in ``sequence``, a ``fact`` stands alone.

    ``ttl_s`` is how long after its ``time`` an event is worth delivering: queues keep no message longer than
    the longest TTL of the types they carry. Only a ``discardable`` type (an ephemeral fact that a newer one
    replaces, nothing changes state on it) is dropped by a consumer once older than its TTL; any other
    expired event is still applied, late, because dropping it would lose a step of the saga."""

    name: str
    context: str
    model: type[EventData]
    kind: Kind
    version: int = 1
    published_on: Destination | None = None
    ttl_s: int = STATE_TTL_S
    discardable: bool = False
    archived: bool = False
    """Published on a topic or stream, and also put on its context's bus so that the bus's archive keeps
    it: the read models built from it can then be rebuilt by a replay (``acr.projections``)."""

    def __post_init__(self) -> None:
        if self.discardable and self.kind != "fact":
            raise ValueError(f"{self.name}: only a fact can be discarded when it expires, not a {self.kind}")

    @property
    def type(self) -> str:
        return f"acme.acr.{self.context}.{self.name}"

    @property
    def dataschema(self) -> str:
        return f"urn:acme:acr:schema:{self.context}:{self.name}:v{self.version}"

    @property
    def source(self) -> str:
        return f"acr.{CONTEXT_SERVICE[self.context]}"

    @property
    def destination(self) -> Destination:
        """Where the producer publishes it: ``published_on``, else its context's bus."""
        return self.published_on or Destination("bus", bus_name(self.context))

    @property
    def destinations(self) -> tuple[Destination, ...]:
        """Every place an event of this type goes: its destination, then its context's bus if archived."""
        bus = Destination("bus", bus_name(self.context))
        return (self.destination, bus) if self.archived and self.destination != bus else (self.destination,)


RIDE_UPDATES = Destination("topic", RIDE_UPDATES_TOPIC)
TELEMETRY = Destination("stream", TELEMETRY_STREAM)
