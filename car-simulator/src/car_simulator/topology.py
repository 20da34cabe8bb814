"""The car edge's slice: the telemetry stream it writes."""

from acr.topology import ServiceTopology, Stream
from acr.topology.model import TELEMETRY_STREAM

TOPOLOGY = ServiceTopology(service="car-simulator", streams=(Stream(TELEMETRY_STREAM, shards=2),))
