"""The reward context's slice of the topology."""

from acr.catalog import RewardPointsEarned, RiderTierChanged
from acr.topology import ServiceTopology, Table

TOPOLOGY = ServiceTopology(
    service="reward",
    context="reward",
    publishes=(RewardPointsEarned, RiderTierChanged),
    tables=(Table("acr-reward-riders", "riderId"),),
)
