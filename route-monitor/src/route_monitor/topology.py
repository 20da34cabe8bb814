"""The monitoring context's slice: its bus and what it publishes."""

from acr.catalog import CarArrivedAtPickup, CarStalled, RideEtaUpdated, TripCompleted, TripStarted
from acr.topology import ServiceTopology, Table

TOPOLOGY = ServiceTopology(
    service="route-monitor",
    context="monitoring",
    publishes=(RideEtaUpdated, CarArrivedAtPickup, TripStarted, TripCompleted, CarStalled),
    tables=(Table("acr-route-monitor-checkpoints", "shardId"),),
)
