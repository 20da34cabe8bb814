"""Topology as code: each service declares its slice; one idempotent command applies them all."""

from acr.topology.model import (
    Index,
    ServiceTopology,
    Stream,
    Subscription,
    Table,
    TopicSubscription,
    discover,
    lease_table,
)

__all__ = [
    "Index",
    "ServiceTopology",
    "Stream",
    "Subscription",
    "Table",
    "TopicSubscription",
    "discover",
    "lease_table",
]
