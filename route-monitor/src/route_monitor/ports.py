"""What the monitoring context needs from the outside world."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from acr import unit_of_work
from acr.stream import Checkpoint
from route_monitor.domain import CarCursor, RideTracking


class Roads(Protocol):
    """The street graph: what is left of a route."""

    def remaining(self, lat: float, lon: float, to_lat: float, to_lon: float) -> tuple[float, float] | None:
        """(duration_s, distance_m) of the fastest route, or None when there is none."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """Changed rows, recorded facts and the stream checkpoint: committed together or not at all."""

    def save_car(self, car: CarCursor) -> None:
        """Stage ``car`` (fails the commit with label ``car`` unless the row is still at ``car.version``)."""
        ...

    def save_ride(self, ride: RideTracking) -> None:
        """Stage ``ride`` (fails the commit with label ``ride`` unless the row is still at
        ``ride.version``)."""
        ...

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        """Stage the reader's position on its shard."""
        ...


class TrackingStore(Protocol):
    """The stored car cursors and ride tracking rows, and the unit of work that changes them."""

    def cars(self, car_ids: Iterable[str]) -> dict[str, CarCursor]: ...

    def carrying(self) -> list[CarCursor]:
        """Every car cursor that carries a ride (read once, when the processor starts)."""
        ...

    def rides(self, ride_ids: Iterable[str]) -> dict[str, RideTracking]: ...

    def unit_of_work(self) -> UnitOfWork: ...
