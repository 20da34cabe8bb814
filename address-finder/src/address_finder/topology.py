"""address-finder talks HTTP only: it has no messaging slice."""

from acr.topology import ServiceTopology

TOPOLOGY = ServiceTopology(service="address-finder")
