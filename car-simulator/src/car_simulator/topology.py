"""The car edge's slice: the telemetry stream it writes and the fleet events it obeys.

It publishes nothing on a bus (``context`` None); its subscription gets an inbox table automatically,
where the idempotency markers of the fleet events are kept (see ``handlers``).
"""

from acr.catalog.base import TELEMETRY_STREAM
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.topology import ServiceTopology, Stream, Subscription

TOPOLOGY = ServiceTopology(
    service="car-simulator",
    subscriptions=(Subscription("events", (CarAssigned, CarReleased, CarOutOfService)),),
    streams=(Stream(TELEMETRY_STREAM, shards=2),),
)
