"""The fleet context's slice."""

from acr.catalog import CarAssigned, CarOutOfService, CarReleased, NoCarAvailable, RideRequested
from acr.topology import ServiceTopology, Subscription, Table

CARS = "acr-car-dispatcher-cars"
ASSIGNMENTS = "acr-car-dispatcher-assignments"

TOPOLOGY = ServiceTopology(
    service="car-dispatcher",
    context="fleet",
    publishes=(CarAssigned, NoCarAvailable, CarReleased, CarOutOfService),
    subscriptions=(Subscription("events", (RideRequested,)),),
    tables=(Table(CARS, "carId"), Table(ASSIGNMENTS, "rideId")),
)
