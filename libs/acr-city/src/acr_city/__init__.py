"""acr_city: a deterministic routable, addressable city (synthetic or from OSM) for ACR services."""

from .cars import CarIndex
from .city import City, load_city
from .model import Address, Bounds, CarEta, InvalidQuery, OutsideServiceArea, Poi, Route

__all__ = [
    "Address",
    "Bounds",
    "CarEta",
    "CarIndex",
    "City",
    "InvalidQuery",
    "OutsideServiceArea",
    "Poi",
    "Route",
    "load_city",
]
