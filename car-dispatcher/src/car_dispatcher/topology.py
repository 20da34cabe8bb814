"""The fleet context's slice."""

from acr.catalog.car import CarTelemetry
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased, FleetCarUpdated, NoCarAvailable
from acr.catalog.monitoring import CarStalled, TripCompleted, TripStarted
from acr.catalog.ride import RideCancelled, RideRequested
from acr.topology import ServiceTopology, Subscription, Table

CARS = "acr-car-dispatcher-cars"
ASSIGNMENTS = "acr-car-dispatcher-assignments"
CHECKPOINTS = "acr-car-dispatcher-leases"  # the lease table: a shard's lease row holds its checkpoint
FLEET = "acr-car-dispatcher-fleet"  # the live fleet view (generation 0; a rebuild's copies add "-g<n>")
PROJECTIONS = "acr-car-dispatcher-projections"  # which copy of each read model is read (acr.projections)
FLEET_VIEW = "fleet-view"  # the queue of the car states the fleet view is built from
FLEET_REBUILD = "fleet-rebuild"  # the queue a replay of the acr-fleet archive fills during a rebuild

TOPOLOGY = ServiceTopology(
    service="car-dispatcher",
    context="fleet",
    publishes=(CarAssigned, NoCarAvailable, CarReleased, CarOutOfService, FleetCarUpdated),
    subscriptions=(
        Subscription("events", (RideRequested, RideCancelled, TripStarted, TripCompleted, CarStalled)),
        Subscription(FLEET_VIEW, (FleetCarUpdated,)),
        Subscription(FLEET_REBUILD, (FleetCarUpdated,), replayed=True),
    ),
    reads=(CarTelemetry,),  # car positions, for dispatch
    tables=(
        Table(CARS, "carId"),
        Table(ASSIGNMENTS, "rideId"),
        # one partition, every car in it by id: the view is one Query of exactly the fleet's cars
        Table(FLEET, "fleet", "carId"),
        Table(PROJECTIONS, "name"),
    ),
    leases=True,
)
assert TOPOLOGY.leases_table == CHECKPOINTS
