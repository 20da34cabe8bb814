"""What the fleet context needs from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from acr import unit_of_work
from acr.catalog.fleet import FleetCarUpdated
from acr.stream import Checkpoint
from car_dispatcher.domain import Assignment, Candidate, Car, CarState

Position = tuple[float, float]


class Roads(Protocol):
    """Road ETAs on the city's street graph."""

    def etas_to(self, lat: float, lon: float, cars: Sequence[Car], max_eta_s: float) -> list[Candidate]: ...

    def contains(self, lat: float, lon: float) -> bool: ...


class Cars(Protocol):
    def get(self, car_id: str) -> Car | None: ...

    def all(self) -> list[Car]: ...

    def add(self, car: Car) -> None:
        """Stage a new car (fails the commit with label ``car`` if the table has it already)."""
        ...

    def reserve(self, car: Car, ride_id: str) -> None:
        """Stage AVAILABLE -> RESERVED for ``ride_id`` (fails the commit with label ``car`` unless the car
        is still AVAILABLE at ``car.version``)."""
        ...

    def change(self, car: Car, state: CarState, ride_id: str | None) -> None:
        """Stage a state change (fails the commit with label ``car`` unless the car is at ``car.version``)."""
        ...


class Assignments(Protocol):
    def get(self, ride_id: str) -> Assignment | None: ...

    def add(self, assignment: Assignment) -> None:
        """Stage a ride's first row (fails the commit with label ``assignment`` if it exists)."""
        ...

    def save(self, assignment: Assignment, expected_version: int) -> None:
        """Stage a row over ``expected_version`` (fails the commit with label ``assignment`` otherwise)."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def cars(self) -> Cars: ...

    @property
    def assignments(self) -> Assignments: ...


class FleetView(Protocol):
    """The live positions of the fleet (from telemetry) and a nearest-available-car index."""

    def nearest_available(self, lat: float, lon: float, k: int) -> list[Car]: ...

    def refresh(self, car: Car) -> None:
        """A committed state change (the position kept from telemetry)."""
        ...

    def moved(self, car_id: str, lat: float, lon: float) -> None:
        """A telemetry position."""
        ...

    def position(self, car_id: str) -> Position | None: ...

    def all(self) -> list[Car]: ...


class Positions(Protocol):
    """Where telemetry positions and the stream's checkpoints are persisted."""

    def save_positions(self, positions: dict[str, Position]) -> None: ...

    def save_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class FleetViewRows(Protocol):
    """The write side of the live fleet view: one row per car, its dispatch state at its latest version."""

    def put_if_newer(self, car: FleetCarUpdated, sequence: int) -> None:
        """Raise ``Stale`` unless ``sequence`` is newer than the stored row's (``acr.ordering``); else stage
        the car's state at that sequence (fails the commit with label ``fleet`` if a row of its sequence or
        a newer one was stored meanwhile)."""
        ...


class FleetViewUnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def fleet_view(self) -> FleetViewRows: ...


class FleetReadModel(Protocol):
    """The read side of the live fleet view (``GET /v1/fleet``)."""

    def cars(self) -> list[Car]:
        """Every car the view holds, by id, as its last event left it (position included)."""
        ...
