"""The Car aggregate, ride assignments and the dispatch decision. Pure Python: no FastAPI, no boto3."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from acr.catalog.base import Place


class CarState(StrEnum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    ON_TRIP = "ON_TRIP"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


@dataclass(frozen=True)
class Car:
    car_id: str
    state: CarState
    lat: float
    lon: float
    ride_id: str | None = None
    version: int = 0

    def serves(self, ride_id: str) -> bool:
        return self.ride_id == ride_id and self.state in (CarState.RESERVED, CarState.ON_TRIP)


class AssignmentStatus(StrEnum):
    ASSIGNED = "ASSIGNED"
    NO_CAR = "NO_CAR"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class Assignment:
    """The fleet's view of one ride: which car serves it and how far it got (one row per ride)."""

    ride_id: str
    status: AssignmentStatus
    car_id: str | None = None
    pickup: Place | None = None
    dropoff: Place | None = None
    trip_started: bool = False
    version: int = 0

    def moved(self, **changes: object) -> Assignment:
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Candidate:
    """An available car and its road ETA to a pickup."""

    car_id: str
    eta_s: float
    distance_m: float


class DispatchPaused(Exception):
    """An operator paused dispatch: the request waits (it is redelivered later)."""


class NoReplacementYet(Exception):
    """A stalled ride found no other car: retried later, when one may be free."""


def ranked(candidates: list[Candidate], max_eta_s: float) -> list[Candidate]:
    """Cars that can reach the pickup in time, fastest first (ties by id, so the choice is stable)."""
    return sorted((c for c in candidates if c.eta_s <= max_eta_s), key=lambda c: (c.eta_s, c.car_id))
