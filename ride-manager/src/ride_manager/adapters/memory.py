"""In-memory adapters with the same atomicity and conditions as the DynamoDB ones (for fast tests)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acr_testkit.memory import Apply, MemoryUnitOfWork

from acr.catalog.base import Place
from acr.unit_of_work import Outgoing
from ride_manager.domain import Quote, Ride
from ride_manager.ports import IdempotencyRecord
from ride_manager.snapshot import ride_to_json


@dataclass
class MemoryStore:
    """What the tables hold."""

    rides: dict[str, Ride] = field(default_factory=dict)
    versions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)


class MemoryRides:
    def __init__(self, staged: MemoryRideUnitOfWork) -> None:
        self._s = staged

    def get(self, ride_id: str) -> Ride | None:
        ride = self._s.store.rides.get(ride_id)
        return copy.deepcopy(ride) if ride else None

    def add(self, ride: Ride) -> None:
        self._s.stage(lambda: "ride" if ride.ride_id in self._s.store.rides else None, self._writer(ride))

    def save(self, ride: Ride, expected_version: int) -> None:
        def check() -> str | None:
            current = self._s.store.rides.get(ride.ride_id)
            return None if current and current.version == expected_version else "ride"

        self._s.stage(check, self._writer(ride))

    def _writer(self, ride: Ride) -> Apply:
        snapshot = copy.deepcopy(ride)
        snapshot.events = []  # what is stored is the state; its events went to the outbox

        def write() -> None:
            self._s.store.rides[ride.ride_id] = snapshot
            self._s.store.versions[(ride.ride_id, ride.version)] = ride_to_json(snapshot)

        return write


class MemoryQuotes:
    def __init__(self, staged: MemoryRideUnitOfWork) -> None:
        self._s = staged

    def get(self, quote_id: str) -> Quote | None:
        return self._s.store.quotes.get(quote_id)

    def add(self, quote: Quote) -> None:
        self._s.stage(lambda: None, lambda: self._s.store.quotes.__setitem__(quote.quote_id, quote))

    def mark_used(self, quote: Quote, ride_id: str) -> None:
        def check() -> str | None:
            current = self._s.store.quotes.get(quote.quote_id)
            return None if current and current.ride_id is None else "quote"

        def apply() -> None:
            current = self._s.store.quotes[quote.quote_id]
            self._s.store.quotes[quote.quote_id] = Quote(**{**current.__dict__, "ride_id": ride_id})

        self._s.stage(check, apply)


class MemoryKeys:
    def __init__(self, staged: MemoryRideUnitOfWork) -> None:
        self._s = staged

    def get(self, rider_id: str, key: str) -> IdempotencyRecord | None:
        return self._s.store.keys.get((rider_id, key))

    def claim(self, record: IdempotencyRecord, ttl_s: float) -> None:
        slot = (record.rider_id, record.key)
        self._s.stage(
            lambda: "idempotency" if slot in self._s.store.keys else None,
            lambda: self._s.store.keys.__setitem__(slot, record),
        )


class MemoryRideUnitOfWork(MemoryUnitOfWork):
    """The ride context's unit of work in memory (same conditions as the DynamoDB one)."""

    def __init__(self, store: MemoryStore, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(store, before_commit)
        self.store = store
        self.rides = MemoryRides(self)
        self.quotes = MemoryQuotes(self)
        self.keys = MemoryKeys(self)


class StaticGeo:
    """A flat-earth city: places are what you ask for, trips are straight lines at 36 km/h."""

    def __init__(self, places: dict[str, Place] | None = None) -> None:
        self.places = places or {}

    def place_of_address(self, address_id: str) -> Place:
        from ride_manager.domain import AddressNotFound

        if address_id not in self.places:
            raise AddressNotFound("no such address")
        return self.places[address_id]

    def place_at(self, lat: float, lon: float) -> Place:
        return Place(label=f"{lat:.4f},{lon:.4f}", lat=lat, lon=lon)

    def trip(self, pickup: Place, dropoff: Place) -> tuple[float, float]:
        from acr.geo import haversine_m

        distance = haversine_m(pickup.lat, pickup.lon, dropoff.lat, dropoff.lon)
        return distance, distance / 10


class StaticDispatch:
    def __init__(self, eta_s: float | None = 120) -> None:
        self.eta_s = eta_s

    def pickup_eta(self, lat: float, lon: float) -> float | None:
        return self.eta_s


class MemoryHistory:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def rides_of(
        self, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        rides = sorted(
            (r for r in self._store.rides.values() if r.rider_id == rider_id),
            key=lambda r: r.requested_at,
            reverse=True,
        )
        start = int(cursor or 0)
        page = rides[start : start + limit]
        more = start + limit < len(rides)
        return [ride_to_json(r) for r in page], str(start + limit) if more else None

    def versions(self, ride_id: str, after_version: int) -> list[dict[str, object]]:
        return [
            v for (rid, n), v in sorted(self._store.versions.items()) if rid == ride_id and n > after_version
        ]

    def active(self) -> list[dict[str, object]]:
        from ride_manager.domain import ACTIVE

        return [ride_to_json(r) for r in self._store.rides.values() if r.status in ACTIVE]

    def awaiting_car(self, limit: int) -> list[tuple[str, str]]:
        from ride_manager.domain import RideStatus

        waiting = [r for r in self._store.rides.values() if r.status == RideStatus.REQUESTED]
        return [(r.ride_id, r.requested_at) for r in sorted(waiting, key=lambda r: r.requested_at)][:limit]
