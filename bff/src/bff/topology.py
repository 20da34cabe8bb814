"""The BFF's slice: a FIFO queue on the ride updates topic, for websocket push."""

from acr.topology import ServiceTopology, TopicSubscription
from acr.topology.model import RIDE_UPDATES_TOPIC

TOPOLOGY = ServiceTopology(
    service="bff",
    topic_subscriptions=(TopicSubscription("ride-updates", RIDE_UPDATES_TOPIC),),
)
