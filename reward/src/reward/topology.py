"""The reward context's slice of the topology."""

from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.reward import RewardPointsEarned, RiderStandingChanged, RiderTierChanged
from acr.topology import ServiceTopology, Subscription, Table

RIDERS = "acr-reward-riders"
RIDE_EFFECTS = "acr-reward-ride-effects"
RIDER_STATS = "acr-reward-rider-stats"  # the read model's generation 0; a rebuild's copies add "-g<n>"
PROJECTIONS = "acr-reward-projections"  # which copy of the rider stats is read (acr.projections)
STATS = "stats"  # the live standings, from the acr-reward bus
STATS_REBUILD = "stats-rebuild"  # the queue a replay of the acr-reward archive fills during a rebuild

TOPOLOGY = ServiceTopology(
    service="reward",
    context="reward",
    publishes=(RewardPointsEarned, RiderTierChanged, RiderStandingChanged),
    subscriptions=(
        Subscription("events", (PaymentSucceeded, PaymentFailed)),
        Subscription(STATS, (RiderStandingChanged,)),
        Subscription(STATS_REBUILD, (RiderStandingChanged,), replayed=True),
    ),
    tables=(
        Table(RIDERS, "riderId"),
        Table(RIDE_EFFECTS, "rideId", "effect"),
        Table(RIDER_STATS, "riderId"),
        Table(PROJECTIONS, "name"),
    ),
    leases=True,  # the sweeper of expired markers and sent rows runs on one replica at a time
)
