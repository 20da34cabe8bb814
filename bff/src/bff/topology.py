"""The BFF's slice: a FIFO queue on the ride updates topic, and a queue of ETA updates, for websocket push."""

from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.topology import ServiceTopology, Subscription, TopicSubscription

TOPOLOGY = ServiceTopology(
    service="bff",
    subscriptions=(Subscription("ride-eta", (RideEtaUpdated,)),),
    topic_subscriptions=(TopicSubscription("ride-updates", RideUpdated),),
    inbox=False,  # push keeps no state: each connection sends a (ride, version) at most once
)
