"""The reward context's slice of the topology."""

from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.reward import RewardPointsEarned, RiderTierChanged
from acr.topology import ServiceTopology, Subscription, Table

RIDERS = "acr-reward-riders"
RIDE_EFFECTS = "acr-reward-ride-effects"

TOPOLOGY = ServiceTopology(
    service="reward",
    context="reward",
    publishes=(RewardPointsEarned, RiderTierChanged),
    subscriptions=(Subscription("events", (PaymentSucceeded, PaymentFailed)),),
    tables=(Table(RIDERS, "riderId"), Table(RIDE_EFFECTS, "rideId", "effect")),
    leases=True,  # the sweeper of expired markers and sent rows runs on one replica at a time
)
