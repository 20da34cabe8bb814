"""What the ride context needs from the outside world (adapters implement these; tests fake them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from acr.catalog.base import Place
from acr.envelope import CloudEvent
from acr.unit_of_work import Outgoing
from ride_manager.domain import Quote, Ride


@dataclass(frozen=True)
class IdempotencyRecord:
    rider_id: str
    key: str
    body_hash: str
    ride_id: str


class RideRepository(Protocol):
    def get(self, ride_id: str) -> Ride | None: ...

    def add(self, ride: Ride) -> None: ...

    def save(self, ride: Ride, expected_version: int) -> None: ...


class QuoteRepository(Protocol):
    def get(self, quote_id: str) -> Quote | None: ...

    def add(self, quote: Quote) -> None: ...

    def mark_used(self, quote: Quote, ride_id: str) -> None: ...


class IdempotencyKeys(Protocol):
    def get(self, rider_id: str, key: str) -> IdempotencyRecord | None: ...

    def claim(self, record: IdempotencyRecord, ttl_s: float) -> None: ...


class UnitOfWork(Protocol):
    """Repositories plus outbox and inbox, committed atomically."""

    rides: RideRepository
    quotes: QuoteRepository
    keys: IdempotencyKeys

    def record(self, outgoing: Outgoing) -> None: ...

    def mark_consumed(self, event: CloudEvent) -> None: ...

    def commit(self) -> None: ...


class Geo(Protocol):
    """address-finder: places and street-graph trips."""

    def place_of_address(self, address_id: str) -> Place: ...

    def place_at(self, lat: float, lon: float) -> Place: ...

    def trip(self, pickup: Place, dropoff: Place) -> tuple[float, float]:
        """(distance_m, duration_s) on the street graph."""
        ...


class Dispatch(Protocol):
    """car-dispatcher: the nearest available car's pickup ETA right now."""

    def pickup_eta(self, lat: float, lon: float) -> float | None: ...


class RideHistory(Protocol):
    """Read side: a rider's rides, newest first; every version of a ride."""

    def rides_of(
        self, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]: ...

    def versions(self, ride_id: str, after_version: int) -> list[dict[str, object]]: ...

    def active(self) -> list[dict[str, object]]: ...

    def awaiting_car(self, limit: int) -> list[tuple[str, str]]:
        """(ride id, requestedAt) of the rides still REQUESTED, oldest first."""
        ...
