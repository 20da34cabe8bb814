"""The fleet every service agrees on: car ids and starting positions from one seeded generator."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FleetCar:
    car_id: str
    lat: float
    lon: float


def car_id(n: int) -> str:
    return f"car-{n:05d}"


def seed_fleet(
    size: int,
    seed: int,
    bounds: tuple[float, float, float, float],
    snap: Callable[[float, float], tuple[float, float]] | None = None,
) -> list[FleetCar]:
    """``size`` cars spread over ``bounds`` (min_lon, min_lat, max_lon, max_lat), each snapped to a street
    when ``snap`` is given. Same arguments, same fleet, on every machine."""
    rng = random.Random(f"acr-fleet-{seed}")
    min_lon, min_lat, max_lon, max_lat = bounds
    cars = []
    for n in range(1, size + 1):
        lat, lon = rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon)
        if snap:
            lat, lon = snap(lat, lon)
        cars.append(FleetCar(car_id(n), lat, lon))
    return cars
