"""What the monitoring context needs from the outside world."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from acr.stream import Checkpoint
from acr.unit_of_work import Outgoing
from route_monitor.domain import CarCursor, RideTracking


class Roads(Protocol):
    """The street graph: what is left of a route."""

    def remaining(self, lat: float, lon: float, to_lat: float, to_lon: float) -> tuple[float, float] | None:
        """(duration_s, distance_m) of the fastest route, or None when there is none."""
        ...


class TrackingUnitOfWork(Protocol):
    """Changed rows, outgoing facts and the stream checkpoint: committed together or not at all."""

    def save_car(self, car: CarCursor) -> None: ...

    def save_ride(self, ride: RideTracking) -> None: ...

    def record(self, outgoing: Outgoing) -> None: ...

    def checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def commit(self) -> None:
        """Raises ``acr.unit_of_work.Conflict`` when a row changed since it was read."""
        ...


class TrackingStore(Protocol):
    def cars(self, car_ids: Iterable[str]) -> dict[str, CarCursor]: ...

    def rides(self, ride_ids: Iterable[str]) -> dict[str, RideTracking]: ...

    def unit_of_work(self) -> TrackingUnitOfWork: ...
