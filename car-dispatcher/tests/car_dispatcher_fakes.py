"""In-memory adapters of the fleet ports, with the DynamoDB ones' conditions (for fast tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from acr.catalog.fleet import FleetCarUpdated
from acr.consumer import Stale
from acr.geo import haversine_m
from acr.stream import Checkpoint
from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from car_dispatcher.domain import Assignment, Candidate, Car, CarState
from car_dispatcher.ports import Position


@dataclass
class FleetStore(MessageStore):
    cars: dict[str, Car] = field(default_factory=dict)
    assignments: dict[str, Assignment] = field(default_factory=dict)
    fleet_view: dict[int, dict[str, Car]] = field(default_factory=lambda: {0: {}})
    """The fleet view's copies by generation, each car's row at the version of its last event."""


class MemoryFleetUnitOfWork(MemoryUnitOfWork):
    def __init__(self, store: FleetStore, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(store, before_commit)
        self.store = store
        self.cars = _Cars(self)
        self.assignments = _Assignments(self)


class _Cars:
    def __init__(self, uow: MemoryFleetUnitOfWork) -> None:
        self._uow = uow

    def get(self, car_id: str) -> Car | None:
        return self._uow.store.cars.get(car_id)

    def all(self) -> list[Car]:
        return sorted(self._uow.store.cars.values(), key=lambda c: c.car_id)

    def add(self, car: Car) -> None:
        cars = self._uow.store.cars
        self._uow.stage(
            lambda: "car" if car.car_id in cars else None, lambda: cars.__setitem__(car.car_id, car)
        )

    def reserve(self, car: Car, ride_id: str) -> None:
        cars = self._uow.store.cars

        def check() -> str | None:
            current = cars.get(car.car_id)
            ok = (
                current is not None and current.state == CarState.AVAILABLE and current.version == car.version
            )
            return None if ok else "car"

        self._uow.stage(check, lambda: self._apply(car.car_id, CarState.RESERVED, ride_id))

    def change(self, car: Car, state: CarState, ride_id: str | None) -> None:
        cars = self._uow.store.cars

        def check() -> str | None:
            current = cars.get(car.car_id)
            return None if current is not None and current.version == car.version else "car"

        self._uow.stage(check, lambda: self._apply(car.car_id, state, ride_id))

    def _apply(self, car_id: str, state: CarState, ride_id: str | None) -> None:
        """The stored car (its position as saved) at its next version."""
        cars = self._uow.store.cars
        cars[car_id] = cars[car_id].changed(state, ride_id)


class _Assignments:
    def __init__(self, uow: MemoryFleetUnitOfWork) -> None:
        self._uow = uow

    def get(self, ride_id: str) -> Assignment | None:
        return self._uow.store.assignments.get(ride_id)

    def add(self, assignment: Assignment) -> None:
        rows = self._uow.store.assignments
        self._uow.stage(
            lambda: "assignment" if assignment.ride_id in rows else None,
            lambda: rows.__setitem__(assignment.ride_id, assignment),
        )

    def save(self, assignment: Assignment, expected_version: int) -> None:
        rows = self._uow.store.assignments

        def check() -> str | None:
            current = rows.get(assignment.ride_id)
            return None if current is not None and current.version == expected_version else "assignment"

        self._uow.stage(check, lambda: rows.__setitem__(assignment.ride_id, assignment))


class MemoryFleetViewUnitOfWork(MemoryUnitOfWork):
    """The fleet view projector's unit of work in memory: no markers, writes to ``copies`` only."""

    def __init__(
        self,
        store: FleetStore,
        copies: tuple[int, ...] = (0,),
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(store, before_commit, marked=False)
        self.fleet_view = _FleetViewRows(self, store, copies)


class _FleetViewRows:
    def __init__(self, uow: MemoryFleetViewUnitOfWork, store: FleetStore, copies: tuple[int, ...]) -> None:
        self._uow, self._store, self._copies = uow, store, copies

    def put_if_newer(self, car: FleetCarUpdated, sequence: int) -> None:
        copies = [self._store.fleet_view[copy] for copy in self._copies]
        newer = [rows for rows in copies if _stored(rows, car.car_id) < sequence]
        if copies and not newer:
            raise Stale(f"{car.car_id} #{sequence} is not newer than the fleet view")
        row = Car(car.car_id, CarState(car.state), car.lat, car.lon, car.ride_id, sequence)
        for rows in newer:
            self._uow.stage(
                partial(_newer_stored, rows, car.car_id, sequence), partial(rows.__setitem__, car.car_id, row)
            )


def _stored(rows: dict[str, Car], car_id: str) -> int:
    row = rows.get(car_id)
    return row.version if row else -1


def _newer_stored(rows: dict[str, Car], car_id: str, sequence: int) -> str | None:
    return "fleet" if _stored(rows, car_id) >= sequence else None


class MemoryFleetReadModel:
    def __init__(self, store: FleetStore, generation: int = 0) -> None:
        self._store, self.generation = store, generation

    def cars(self) -> list[Car]:
        return sorted(self._store.fleet_view[self.generation].values(), key=lambda c: c.car_id)


class StoreFleet:
    """A FleetView over the store itself (positions never move in these tests)."""

    def __init__(self, store: FleetStore) -> None:
        self._store = store

    def nearest_available(self, lat: float, lon: float, k: int) -> list[Car]:
        cars = [c for c in self._store.cars.values() if c.state == CarState.AVAILABLE]
        return sorted(cars, key=lambda c: haversine_m(lat, lon, c.lat, c.lon))[:k]

    def refresh(self, car: Car) -> None:
        return None

    def moved(self, car_id: str, lat: float, lon: float) -> None:
        return None

    def position(self, car_id: str) -> Position | None:
        car = self._store.cars.get(car_id)
        return (car.lat, car.lon) if car else None

    def all(self) -> list[Car]:
        return sorted(self._store.cars.values(), key=lambda c: c.car_id)


class StraightRoads:
    """Straight lines at 10 m/s: enough to rank cars in tests."""

    def etas_to(self, lat: float, lon: float, cars: Sequence[Car], max_eta_s: float) -> list[Candidate]:
        found = [
            Candidate(c.car_id, haversine_m(lat, lon, c.lat, c.lon) / 10, haversine_m(lat, lon, c.lat, c.lon))
            for c in cars
        ]
        return [c for c in found if c.eta_s <= max_eta_s]

    def contains(self, lat: float, lon: float) -> bool:
        return 60.0 <= lat <= 60.5 and 24.5 <= lon <= 25.5


@dataclass
class MemoryPositions:
    """Saved positions (onto the store's cars) and checkpoints."""

    store: FleetStore
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def save_positions(self, positions: dict[str, Position]) -> None:
        for car_id, (lat, lon) in positions.items():
            if car_id in self.store.cars:
                self.store.cars[car_id] = replace(self.store.cars[car_id], lat=lat, lon=lon)

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.checkpoints.append(checkpoint)
