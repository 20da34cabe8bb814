"""The monitoring context's slice: what it publishes and its tables."""

from acr.catalog.car import CarTelemetry
from acr.catalog.monitoring import CarArrivedAtPickup, CarStalled, RideEtaUpdated, TripCompleted, TripStarted
from acr.topology import ServiceTopology, Table

TRACKING = "acr-route-monitor-tracking"  # one row per ride (pk rideId)
CARS = "acr-route-monitor-cars"  # one cursor per car that carries or carried a ride (pk carId)
CHECKPOINTS = "acr-route-monitor-leases"  # the lease table: a shard's lease row holds its checkpoint
READER = "route-monitor"

TOPOLOGY = ServiceTopology(
    service="route-monitor",
    context="monitoring",
    publishes=(RideEtaUpdated, CarArrivedAtPickup, TripStarted, TripCompleted, CarStalled),
    reads=(CarTelemetry,),
    tables=(Table(TRACKING, "rideId"), Table(CARS, "carId")),
    leases=True,
)
assert TOPOLOGY.leases_table == CHECKPOINTS
