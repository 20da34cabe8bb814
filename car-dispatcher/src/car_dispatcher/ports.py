"""What the fleet context needs from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from acr.envelope import CloudEvent
from acr.unit_of_work import Outgoing
from car_dispatcher.domain import Candidate, Car


class Roads(Protocol):
    """Road ETAs on the city's street graph."""

    def etas_to(self, lat: float, lon: float, cars: Sequence[Car], max_eta_s: float) -> list[Candidate]: ...

    def contains(self, lat: float, lon: float) -> bool: ...


class Cars(Protocol):
    def get(self, car_id: str) -> Car | None: ...

    def available(self) -> list[Car]: ...

    def all(self) -> list[Car]: ...

    def reserve(self, car: Car, ride_id: str) -> None: ...

    def release(self, car: Car) -> None: ...


class Assignments(Protocol):
    """Which car serves which ride (one row per ride: dispatch happens once per ride)."""

    def get(self, ride_id: str) -> str | None: ...

    def add(self, ride_id: str, car_id: str | None) -> None: ...


class UnitOfWork(Protocol):
    cars: Cars
    assignments: Assignments

    def record(self, outgoing: Outgoing) -> None: ...

    def mark_consumed(self, event: CloudEvent) -> None: ...

    def commit(self) -> None: ...
