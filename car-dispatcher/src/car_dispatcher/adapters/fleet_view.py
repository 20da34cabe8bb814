"""The fleet's live view: latest positions from telemetry plus a nearest-available-car index.

With several replicas it is a view of the WHOLE fleet: positions come from the shards this replica reads
and from those it only watches, states from this replica's commits and from the cars table every few
seconds (``FleetSync``); each car's state only moves forward by version. The view only ranks candidates:
reserving a car is a conditional write, so a car another replica took is refused there."""

from __future__ import annotations

import threading
from dataclasses import replace

from acr_city import Bounds, CarIndex
from car_dispatcher.domain import Car, CarState


class LiveFleet:
    """Thread-safe: consumer threads, stream readers and HTTP requests all use it."""

    def __init__(self, bounds: Bounds, cars: list[Car]) -> None:
        self._lock = threading.Lock()
        self._cars: dict[str, Car] = {}
        self._index = CarIndex(bounds)
        for car in cars:
            self.refresh(car)

    def refresh(self, car: Car) -> None:
        """A committed state change, or the car as the table holds it (position kept from telemetry). A
        version older than the one known is ignored: the view never goes back (a table read that started
        before this replica's own commit, or another replica's, ends after it)."""
        with self._lock:
            known = self._cars.get(car.car_id)
            if known is not None and car.version < known.version:
                return
            if known is not None:
                car = replace(car, lat=known.lat, lon=known.lon)
            self._cars[car.car_id] = car
            self._index.upsert(car.car_id, car.lat, car.lon, car.state == CarState.AVAILABLE)

    def moved(self, car_id: str, lat: float, lon: float) -> None:
        """A telemetry position."""
        with self._lock:
            known = self._cars.get(car_id)
            if known is None:
                return
            self._cars[car_id] = replace(known, lat=lat, lon=lon)
            self._index.upsert(car_id, lat, lon, known.state == CarState.AVAILABLE)

    def nearest_available(self, lat: float, lon: float, k: int) -> list[Car]:
        with self._lock:
            return [self._cars[car_id] for car_id, _ in self._index.nearest(lat, lon, k)]

    def position(self, car_id: str) -> tuple[float, float] | None:
        with self._lock:
            car = self._cars.get(car_id)
            return (car.lat, car.lon) if car else None

    def all(self) -> list[Car]:
        with self._lock:
            return sorted(self._cars.values(), key=lambda c: c.car_id)
