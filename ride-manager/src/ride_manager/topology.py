"""The ride context's slice: its bus, what it publishes, what it listens to, its tables and topic."""

from acr.catalog.fleet import CarAssigned, NoCarAvailable
from acr.catalog.monitoring import CarArrivedAtPickup, CarStalled, TripCompleted, TripStarted
from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.reward import RewardPointsEarned
from acr.catalog.ride import RideCancelled, RideCompleted, RideRequested, RideUpdated
from acr.topology import Index, ServiceTopology, Subscription, Table, TopicSubscription

RIDES = "acr-ride-manager-rides"
RIDE_VERSIONS = "acr-ride-manager-ride-versions"
RIDE_HISTORY = "acr-ride-manager-ride-history"
QUOTES = "acr-ride-manager-quotes"
IDEMPOTENCY = "acr-ride-manager-idempotency"
PROJECTIONS = "acr-ride-manager-projections"  # which copy of each read model is read (acr.projections)
HISTORY_REBUILD = "history-rebuild"  # the queue a replay of the acr-ride archive fills during a rebuild
DEADLINES = "deadlines"  # sparse: only rides with a deadline (not yet terminal) are in it, soonest first
IN_FLIGHT = "in-flight"  # sparse: only rides not yet completed or cancelled, by request time (the ops list)

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
                CarStalled,
                PaymentSucceeded,
                PaymentFailed,
                RewardPointsEarned,
            ),
        ),
        Subscription(HISTORY_REBUILD, (RideUpdated,), replayed=True),
    ),
    tables=(
        Table(RIDES, "rideId", indexes=(Index(DEADLINES, "due", "deadlineAt"),)),
        Table(RIDE_VERSIONS, "rideId", "version", "N"),
        # generation 0; a rebuild's copies add "-g<n>"
        Table(RIDE_HISTORY, "riderId", "requested", indexes=(Index(IN_FLIGHT, "inFlight", "requestedAt"),)),
        Table(QUOTES, "quoteId", ttl_attribute="purgeAt"),
        Table(IDEMPOTENCY, "key", ttl_attribute="expiresAt"),
        Table(PROJECTIONS, "name"),
    ),
    topic_subscriptions=(TopicSubscription("history", RideUpdated),),
    leases=True,  # the watchdog runs on one replica at a time
)
