"""The Car aggregate, ride assignments and the dispatch decision. Pure Python: no FastAPI, no boto3."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from acr.catalog.base import Place
from acr.consumer import Wait
from acr.errors import ServiceError


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

    def changed(self, state: CarState, ride_id: str | None) -> Car:
        """The car at its next version, in ``state`` for ``ride_id``."""
        return replace(self, state=state, ride_id=ride_id, version=self.version + 1)


class AssignmentStatus(StrEnum):
    ASSIGNED = "ASSIGNED"
    NO_CAR = "NO_CAR"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class Assignment:
    """The fleet's view of one ride: which car serves it and how far it got (one row per ride).

    ``cars_assigned`` is the ride's dispatch count, the ``sequence`` of its ``CarAssigned``: 1 for the first
    car, one more for each replacement (``version`` also counts changes nobody is told of, so it would leave
    gaps). ``ride_sequence`` is the ride's version (the ``sequence`` of a ride event) last applied here."""

    ride_id: str
    status: AssignmentStatus
    car_id: str | None = None
    pickup: Place | None = None
    dropoff: Place | None = None
    trip_started: bool = False
    version: int = 0
    cars_assigned: int = 0
    ride_sequence: int = 0

    def assigned(self, car_id: str) -> Assignment:
        """The next car for the ride: its ``CarAssigned`` carries ``cars_assigned`` as its sequence."""
        return replace(
            self,
            status=AssignmentStatus.ASSIGNED,
            car_id=car_id,
            version=self.version + 1,
            cars_assigned=self.cars_assigned + 1,
        )

    def ended(self, status: AssignmentStatus, ride_sequence: int | None = None) -> Assignment:
        """``CANCELLED`` or ``COMPLETED``, at the next version (``ride_sequence``: the ride's version that
        ended it, when a ride event did)."""
        applied = self.ride_sequence if ride_sequence is None else ride_sequence
        return replace(self, status=status, version=self.version + 1, ride_sequence=applied)

    def started(self) -> Assignment:
        return replace(self, trip_started=True, version=self.version + 1)

    def waits_for(self, car_id: str) -> bool:
        """Is ``car_id`` the car this assigned ride counts on?"""
        return self.status == AssignmentStatus.ASSIGNED and self.car_id == car_id


@dataclass(frozen=True)
class Candidate:
    """An available car and its road ETA to a pickup."""

    car_id: str
    eta_s: float
    distance_m: float


class DispatchPaused(Wait):
    """An operator paused dispatch: the request waits, parked for as long as the pause lasts."""


class NoReplacementYet(Wait):
    """A stalled ride found no other car: parked until one may be free (or the ride ends: then the stall
    only takes the car out of service)."""


class AssignmentNotFound(ServiceError):
    status, code = 404, "assignment_not_found"


class CarNotFound(ServiceError):
    status, code = 404, "car_not_found"


class NotOutOfService(ServiceError):
    status, code = 409, "not_out_of_service"


class OutsideServiceArea(ServiceError):
    status, code = 422, "outside_service_area"


class NoCarInReach(ServiceError):
    """No available car can reach a pickup in time (a query's answer; the event is ``NoCarAvailable``)."""

    status, code = 409, "no_car_available"


def ranked(candidates: list[Candidate], max_eta_s: float) -> list[Candidate]:
    """Cars that can reach the pickup in time, fastest first (ties by id, so the choice is stable)."""
    return sorted((c for c in candidates if c.eta_s <= max_eta_s), key=lambda c: (c.eta_s, c.car_id))
