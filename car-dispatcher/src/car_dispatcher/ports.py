"""What the fleet context needs from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from acr.envelope import CloudEvent
from acr.unit_of_work import Outgoing
from car_dispatcher.domain import Assignment, Candidate, Car, CarState


class Roads(Protocol):
    """Road ETAs on the city's street graph."""

    def etas_to(self, lat: float, lon: float, cars: Sequence[Car], max_eta_s: float) -> list[Candidate]: ...

    def contains(self, lat: float, lon: float) -> bool: ...


class Cars(Protocol):
    def get(self, car_id: str) -> Car | None: ...

    def all(self) -> list[Car]: ...

    def reserve(self, car: Car, ride_id: str) -> None:
        """Stage AVAILABLE -> RESERVED for ``ride_id`` (fails the commit if the car was taken)."""
        ...

    def change(self, car: Car, state: CarState, ride_id: str | None) -> None:
        """Stage a state change, on the condition that nobody changed ``car`` since it was read."""
        ...


class Assignments(Protocol):
    def get(self, ride_id: str) -> Assignment | None: ...

    def add(self, assignment: Assignment) -> None: ...

    def save(self, assignment: Assignment, expected_version: int) -> None: ...


class UnitOfWork(Protocol):
    cars: Cars
    assignments: Assignments

    def record(self, outgoing: Outgoing) -> None: ...

    def mark_consumed(self, event: CloudEvent) -> None: ...

    def commit(self) -> None: ...


class FleetView(Protocol):
    """The live positions of the fleet (from telemetry) and a nearest-available-car index."""

    def nearest_available(self, lat: float, lon: float, k: int) -> list[Car]: ...

    def refresh(self, car: Car) -> None: ...

    def position(self, car_id: str) -> tuple[float, float] | None: ...

    def all(self) -> list[Car]: ...
