"""The Car aggregate and the dispatch decision. Pure Python: no FastAPI, no boto3."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


@dataclass(frozen=True)
class Candidate:
    """An available car and its road ETA to a pickup."""

    car_id: str
    eta_s: float
    distance_m: float


class DispatchPaused(Exception):
    """An operator paused dispatch: the request waits (it is redelivered later)."""


class CarTaken(Exception):
    """The chosen car was reserved by another ride first: try the next one."""


def ranked(candidates: list[Candidate], max_eta_s: float) -> list[Candidate]:
    """Cars that can reach the pickup in time, fastest first (ties by id, so the choice is stable)."""
    return sorted((c for c in candidates if c.eta_s <= max_eta_s), key=lambda c: (c.eta_s, c.car_id))
