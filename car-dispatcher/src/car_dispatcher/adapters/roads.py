"""Road ETAs from the city's street graph (one bounded reverse search from the pickup)."""

from __future__ import annotations

from collections.abc import Sequence

from acr_city import City
from car_dispatcher.domain import Candidate, Car


class CityRoads:
    def __init__(self, city: City) -> None:
        self._city = city

    def etas_to(self, lat: float, lon: float, cars: Sequence[Car], max_eta_s: float) -> list[Candidate]:
        etas = self._city.etas_to(lat, lon, [(c.car_id, c.lat, c.lon) for c in cars], max_eta_s)
        return [Candidate(e.car_id, e.eta_s, e.distance_m) for e in etas]

    def contains(self, lat: float, lon: float) -> bool:
        return bool(self._city.bounds.contains(lat, lon))
