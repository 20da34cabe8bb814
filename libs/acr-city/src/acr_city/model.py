"""Public value types and errors of the city library."""

from __future__ import annotations

import math
from dataclasses import dataclass


class InvalidQuery(ValueError):
    """A text query is empty, too long or contains control characters."""


class OutsideServiceArea(ValueError):
    """A coordinate is not finite or lies outside the city bounds."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """Geographic bounding box in degrees."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lat: float, lon: float) -> bool:
        """True when (lat, lon) is finite and inside the box (edges included)."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return False
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon

    def as_list(self) -> list[float]:
        """[min_lon, min_lat, max_lon, max_lat]."""
        return [self.min_lon, self.min_lat, self.max_lon, self.max_lat]


@dataclass(frozen=True, slots=True)
class Address:
    """One postal address (or a point of interest resolved to an address)."""

    address_id: str
    label: str
    street: str
    house_number: int
    postcode: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Poi:
    """A named point of interest, addressable by its name."""

    name: str
    kind: str
    address: Address

    @property
    def lat(self) -> float:
        """Latitude of the point of interest."""
        return self.address.lat

    @property
    def lon(self) -> float:
        """Longitude of the point of interest."""
        return self.address.lon


@dataclass(frozen=True, slots=True)
class Route:
    """A driving route: distance, duration and a (lat, lon) polyline along the streets."""

    distance_m: float
    duration_s: float
    path: list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class CarEta:
    """Road ETA of one car to a pickup point."""

    car_id: str
    eta_s: float
    distance_m: float
