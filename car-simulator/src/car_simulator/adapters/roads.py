"""Routes from the shared city (libs/acr-city)."""

from __future__ import annotations

import logging

from acr_city import City, InvalidQuery, OutsideServiceArea
from car_simulator.domain import Leg, Point, straight_leg

log = logging.getLogger(__name__)


class CityRoads:
    def __init__(self, city: City) -> None:
        self._city = city

    def leg(self, start: Point, end: Point) -> Leg:
        try:
            route = self._city.route(start.lat, start.lon, end.lat, end.lon)
        except (OutsideServiceArea, InvalidQuery) as exc:
            log.warning("no street route %s -> %s (%s): driving a straight line", start, end, exc)
            route = None
        if route is None or not route.path:
            return straight_leg(start, end)
        return Leg(route.path, route.duration_s)
