"""The fleet context's slice."""

from acr.catalog.car import CarTelemetry
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased, NoCarAvailable
from acr.catalog.monitoring import CarStalled, TripCompleted, TripStarted
from acr.catalog.ride import RideCancelled, RideRequested
from acr.topology import ServiceTopology, Subscription, Table

CARS = "acr-car-dispatcher-cars"
ASSIGNMENTS = "acr-car-dispatcher-assignments"
CHECKPOINTS = "acr-car-dispatcher-leases"  # the lease table: a shard's lease row holds its checkpoint

TOPOLOGY = ServiceTopology(
    service="car-dispatcher",
    context="fleet",
    publishes=(CarAssigned, NoCarAvailable, CarReleased, CarOutOfService),
    subscriptions=(
        Subscription("events", (RideRequested, RideCancelled, TripStarted, TripCompleted, CarStalled)),
    ),
    reads=(CarTelemetry,),  # car positions, for dispatch
    tables=(Table(CARS, "carId"), Table(ASSIGNMENTS, "rideId")),
    leases=True,
)
assert TOPOLOGY.leases_table == CHECKPOINTS
