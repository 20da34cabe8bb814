"""Remaining route distance and duration on the city's street graph."""

from __future__ import annotations

from acr_city import City, InvalidQuery, OutsideServiceArea


class CityRoads:
    def __init__(self, city: City) -> None:
        self._city = city

    def remaining(self, lat: float, lon: float, to_lat: float, to_lon: float) -> tuple[float, float] | None:
        try:
            return self._city.travel_time(lat, lon, to_lat, to_lon)
        except (OutsideServiceArea, InvalidQuery):
            return None
