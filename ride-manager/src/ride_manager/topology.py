"""The ride context's slice: its bus, what it publishes, what it listens to, its tables and topic."""

from acr.catalog import (
    CarArrivedAtPickup,
    CarAssigned,
    NoCarAvailable,
    PaymentFailed,
    PaymentSucceeded,
    RewardPointsEarned,
    RideCancelled,
    RideCompleted,
    RideRequested,
    RideUpdated,
    TripCompleted,
    TripStarted,
)
from acr.topology import Index, ServiceTopology, Subscription, Table
from acr.topology.model import RIDE_UPDATES_TOPIC

RIDES = "acr-ride-manager-rides"
RIDE_VERSIONS = "acr-ride-manager-ride-versions"
QUOTES = "acr-ride-manager-quotes"
IDEMPOTENCY = "acr-ride-manager-idempotency"
BY_RIDER = "by-rider"
AWAITING_CAR = "awaiting-car"

TOPOLOGY = ServiceTopology(
    service="ride-manager",
    context="ride",
    publishes=(RideRequested, RideCancelled, RideCompleted, RideUpdated),
    subscriptions=(
        Subscription(
            "events",
            (
                CarAssigned,
                NoCarAvailable,
                CarArrivedAtPickup,
                TripStarted,
                TripCompleted,
                PaymentSucceeded,
                PaymentFailed,
                RewardPointsEarned,
            ),
        ),
    ),
    tables=(
        Table(
            RIDES,
            "rideId",
            indexes=(
                Index(BY_RIDER, "riderId", "requestedAt"),
                Index(AWAITING_CAR, "awaitingCar", "requestedAt"),
            ),
        ),
        Table(RIDE_VERSIONS, "rideId", "version", "N"),
        Table(QUOTES, "quoteId", ttl_attribute="purgeAt"),
        Table(IDEMPOTENCY, "key", ttl_attribute="expiresAt"),
    ),
    topics=(RIDE_UPDATES_TOPIC,),
)
