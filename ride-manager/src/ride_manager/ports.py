"""What the ride context needs from the outside world (adapters implement these; tests fake them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from acr import unit_of_work
from acr.catalog.base import Place
from acr.catalog.ride import RideUpdated
from ride_manager.domain import Quote, Ride


@dataclass(frozen=True)
class IdempotencyRecord:
    rider_id: str
    key: str
    body_hash: str
    ride_id: str


class RideRepository(Protocol):
    def get(self, ride_id: str) -> Ride | None: ...

    def add(self, ride: Ride) -> None:
        """Stage a new ride and its version (fails the commit with label ``ride`` if the ride exists, and
        ``ride-version`` if that version was stored)."""
        ...

    def save(self, ride: Ride, expected_version: int) -> None:
        """Stage ``ride`` and its new version (fails the commit with label ``ride`` unless the stored ride
        is still at ``expected_version``, and ``ride-version`` if the new version was stored)."""
        ...

    def touch(self, ride: Ride) -> None:
        """Stage what changed on ``ride`` without a new version (its deadline, a stalled car): no new
        version is stored, and the commit fails with label ``ride`` unless the stored ride is still at
        ``ride.version``."""
        ...


class QuoteRepository(Protocol):
    def get(self, quote_id: str) -> Quote | None: ...

    def add(self, quote: Quote) -> None:
        """Stage a new quote (fails the commit with label ``quote`` if it exists)."""
        ...

    def mark_used(self, quote: Quote, ride_id: str) -> None:
        """Stage the ride the quote booked (fails the commit with label ``quote`` if it booked one)."""
        ...


class IdempotencyKeys(Protocol):
    def get(self, rider_id: str, key: str) -> IdempotencyRecord | None:
        """The rider's record of ``key``, unless it expired."""
        ...

    def claim(self, record: IdempotencyRecord, ttl_s: float) -> None:
        """Stage the record for ``ttl_s`` (fails the commit with label ``idempotency`` while another one
        of the same rider and key has not expired)."""
        ...


class ActiveRideHolds(Protocol):
    """Which rides of each rider are not yet ended: booking holds one, the ride's end releases it."""

    def count(self, rider_id: str) -> int:
        """How many rides ``rider_id`` holds now."""
        ...

    def hold(self, rider_id: str, ride_id: str, cap: int) -> None:
        """Stage holding ``ride_id`` (fails the commit with label ``active-rides`` when the rider holds
        ``cap`` rides at commit time)."""
        ...

    def release(self, rider_id: str, ride_id: str) -> None:
        """Stage letting ``ride_id`` go (a ride not held is a no-op)."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """The write model's repositories, the outbox and the inbox, committed atomically."""

    @property
    def rides(self) -> RideRepository: ...

    @property
    def quotes(self) -> QuoteRepository: ...

    @property
    def keys(self) -> IdempotencyKeys: ...

    @property
    def active_rides(self) -> ActiveRideHolds: ...


class HistoryRows(Protocol):
    """The write side of the ride history read model: one row per ride, its latest snapshot."""

    def put_if_newer(self, snapshot: RideUpdated, sequence: int) -> None:
        """Raise ``Stale`` unless ``sequence`` is newer than the stored row's (``acr.ordering``); else stage
        the snapshot at that sequence (fails the commit with label ``history`` if a row of its sequence or
        a newer one was stored meanwhile)."""
        ...


class HistoryUnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def history(self) -> HistoryRows: ...


class Geo(Protocol):
    """address-finder: places and street-graph trips."""

    def place_of_address(self, address_id: str) -> Place: ...

    def place_at(self, lat: float, lon: float) -> Place: ...

    def trip(self, pickup: Place, dropoff: Place) -> tuple[float, float]:
        """(distance_m, duration_s) on the street graph."""
        ...


class Dispatch(Protocol):
    """car-dispatcher: the nearest available car's pickup ETA right now; the car it assigned to a ride."""

    def pickup_eta(self, lat: float, lon: float) -> float | None: ...

    def assigned_car(self, ride_id: str) -> str | None:
        """The car the fleet assigned to the ride (None when it assigned none, or the ride ended there);
        raises ``DependencyUnavailable`` when the fleet does not answer."""
        ...


class RideHistory(Protocol):
    """Read side: a rider's rides (the history read model), newest first; every version of a ride; the
    active rides; the rides' deadlines."""

    def rides_of(
        self, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        """A page of the rider's latest snapshots, and the cursor of the next page (None when the store
        knows nothing follows; a cursor may also lead to an empty page)."""
        ...

    def versions(self, ride_id: str, after_version: int) -> list[dict[str, object]]:
        """The ride's public JSON at every version above ``after_version``, oldest first."""
        ...

    def active(self) -> list[dict[str, object]]:
        """Every ride not yet completed or cancelled, newest first."""
        ...

    def deadlines(self, limit: int) -> list[tuple[str, datetime]]:
        """(ride id, deadline) of the rides that have a deadline, soonest first (a sparse index: terminal
        rides have none)."""
        ...
