"""The car edge's slice: the telemetry stream it writes, the fleet events it obeys, its cars table, the
groups' mailboxes and its lease table (``acr-car-simulator-leases``: which replica drives each car group).

It publishes nothing on a bus (``context`` None); its subscription gets an inbox table automatically,
where the idempotency markers of the fleet events are kept, committed with the commands they post (see
``handlers``).
"""

from acr.catalog.base import TELEMETRY_STREAM
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.topology import ServiceTopology, Stream, Subscription, Table

CARS = "acr-car-simulator-cars"  # one row per car that was ever commanded or stalled (pk carId)
COMMANDS = "acr-car-simulator-commands"  # one mailbox row per car group (pk group = "cars#<n>")

TOPOLOGY = ServiceTopology(
    service="car-simulator",
    subscriptions=(Subscription("events", (CarAssigned, CarReleased, CarOutOfService)),),
    tables=(Table(CARS, "carId"), Table(COMMANDS, "group")),
    streams=(Stream(TELEMETRY_STREAM, shards=2),),
    leases=True,
)
