"""The BFF's slice: the ride updates topic and the ETA updates, for websocket push. Per replica: each BFF
replica gets its own FIFO queue on the topic and its own ETA queue and rule, so every replica sees every
update and pushes it to the riders connected to it (docs/architecture.md, "Push across replicas")."""

from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.topology import ServiceTopology, Subscription, TopicSubscription

TOPOLOGY = ServiceTopology(
    service="bff",
    subscriptions=(Subscription("ride-eta", (RideEtaUpdated,)),),
    topic_subscriptions=(TopicSubscription("ride-updates", RideUpdated),),
    inbox=False,  # push keeps no state: each connection sends a (ride, version) at most once
    per_replica=True,
)
