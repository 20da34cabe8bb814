"""In-memory adapters of the ride-manager ports, with the DynamoDB ones' conditions (for fast tests)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from acr.catalog.base import Place
from acr.catalog.ride import RideUpdated
from acr.consumer import Stale
from acr.errors import DependencyUnavailable
from acr.geo import haversine_m
from acr.ordering import Order, order
from acr_testkit.memory import Check, MemoryUnitOfWork, MessageStore
from ride_manager.domain import AddressNotFound, Quote, Ride
from ride_manager.ports import IdempotencyRecord
from ride_manager.snapshot import in_flight, ride_to_json

HistoryKey = tuple[str, str]  # (rider id, "requestedAt#rideId"): the DynamoDB table's key


@dataclass
class RideStore(MessageStore):
    """What the tables hold."""

    rides: dict[str, Ride] = field(default_factory=dict)
    versions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[IdempotencyRecord, float]] = field(default_factory=dict)
    history: dict[HistoryKey, RideUpdated] = field(default_factory=dict)
    holds: dict[str, set[str]] = field(default_factory=dict)  # rider id -> ids of its rides not yet ended


class MemoryRides:
    def __init__(self, uow: MemoryRideUnitOfWork) -> None:
        self._uow = uow

    def get(self, ride_id: str) -> Ride | None:
        ride = self._uow.store.rides.get(ride_id)
        return copy.deepcopy(ride) if ride else None

    def add(self, ride: Ride) -> None:
        rides = self._uow.store.rides
        self._stage(ride, lambda: "ride" if ride.ride_id in rides else None)

    def save(self, ride: Ride, expected_version: int) -> None:
        def check() -> str | None:
            current = self._uow.store.rides.get(ride.ride_id)
            return None if current and current.version == expected_version else "ride"

        self._stage(ride, check)

    def touch(self, ride: Ride) -> None:
        def check() -> str | None:
            current = self._uow.store.rides.get(ride.ride_id)
            return None if current and current.version == ride.version else "ride"

        self._stage(ride, check, versioned=False)

    def _stage(self, ride: Ride, check: Check, versioned: bool = True) -> None:
        """The ride (under ``check``) and its version (absent so far), as the DynamoDB adapter does."""
        store, snapshot = self._uow.store, copy.deepcopy(ride)
        snapshot.events = []  # what is stored is the state; its events went to the outbox
        slot = (ride.ride_id, ride.version)

        def write() -> None:
            store.rides[ride.ride_id] = snapshot
            if versioned:
                store.versions[slot] = ride_to_json(snapshot)

        self._uow.stage(check, write)
        if versioned:
            self._uow.stage(lambda: "ride-version" if slot in store.versions else None, lambda: None)


class MemoryQuotes:
    def __init__(self, uow: MemoryRideUnitOfWork) -> None:
        self._uow = uow

    def get(self, quote_id: str) -> Quote | None:
        return self._uow.store.quotes.get(quote_id)

    def add(self, quote: Quote) -> None:
        quotes = self._uow.store.quotes
        self._uow.stage(
            lambda: "quote" if quote.quote_id in quotes else None,
            lambda: quotes.__setitem__(quote.quote_id, quote),
        )

    def mark_used(self, quote: Quote, ride_id: str) -> None:
        quotes = self._uow.store.quotes

        def check() -> str | None:
            current = quotes.get(quote.quote_id)
            return None if current and current.ride_id is None else "quote"

        def apply() -> None:
            quotes[quote.quote_id] = replace(quotes[quote.quote_id], ride_id=ride_id)

        self._uow.stage(check, apply)


class MemoryKeys:
    def __init__(self, uow: MemoryRideUnitOfWork) -> None:
        self._uow = uow

    def get(self, rider_id: str, key: str) -> IdempotencyRecord | None:
        found = self._uow.store.keys.get((rider_id, key))
        return found[0] if found and found[1] >= time.time() else None

    def claim(self, record: IdempotencyRecord, ttl_s: float) -> None:
        keys, slot = self._uow.store.keys, (record.rider_id, record.key)
        self._uow.stage(
            lambda: "idempotency" if slot in keys and keys[slot][1] >= time.time() else None,
            lambda: keys.__setitem__(slot, (record, time.time() + ttl_s)),
        )


class MemoryActiveRideHolds:
    def __init__(self, uow: MemoryRideUnitOfWork) -> None:
        self._uow = uow

    def count(self, rider_id: str) -> int:
        return len(self._uow.store.holds.get(rider_id, ()))

    def hold(self, rider_id: str, ride_id: str, cap: int) -> None:
        holds = self._uow.store.holds
        self._uow.stage(
            lambda: "active-rides" if len(holds.get(rider_id, ())) >= cap else None,
            lambda: holds.setdefault(rider_id, set()).add(ride_id),
        )

    def release(self, rider_id: str, ride_id: str) -> None:
        holds = self._uow.store.holds
        self._uow.stage(lambda: None, lambda: holds.get(rider_id, set()).discard(ride_id))


class MemoryRideUnitOfWork(MemoryUnitOfWork):
    """The ride context's unit of work in memory (same conditions as the DynamoDB one)."""

    def __init__(self, store: RideStore, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(store, before_commit)
        self.store = store
        self.rides = MemoryRides(self)
        self.quotes = MemoryQuotes(self)
        self.keys = MemoryKeys(self)
        self.active_rides = MemoryActiveRideHolds(self)


def history_key(snapshot: RideUpdated) -> HistoryKey:
    return snapshot.rider_id, f"{snapshot.ride['requestedAt']}#{snapshot.ride_id}"


class MemoryHistoryRows:
    def __init__(self, uow: MemoryHistoryUnitOfWork) -> None:
        self._uow = uow

    def put_if_newer(self, snapshot: RideUpdated, sequence: int) -> None:
        rows, key = self._uow.store.history, history_key(snapshot)
        stored = rows.get(key)
        if stored is not None and order(stored.version, sequence, gapless=False) is not Order.APPLY:
            raise Stale(f"{snapshot.ride_id} #{sequence} is not newer than the projection")

        def check() -> str | None:
            current = rows.get(key)
            return "history" if current is not None and current.version >= sequence else None

        self._uow.stage(check, lambda: rows.__setitem__(key, snapshot))


class MemoryHistoryUnitOfWork(MemoryUnitOfWork):
    """The ride history projector's unit of work in memory: no markers."""

    def __init__(self, store: RideStore, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(store, before_commit, marked=False)
        self.store = store
        self.history = MemoryHistoryRows(self)


class MemoryRideHistory:
    """The read side over the same store."""

    def __init__(self, store: RideStore) -> None:
        self._store = store

    def rides_of(
        self, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        rows = sorted(
            ((key, row) for key, row in list(self._store.history.items()) if key[0] == rider_id),
            key=lambda pair: pair[0][1],
            reverse=True,
        )
        start = 0
        if cursor:
            owner, _, offset = cursor.partition(":")
            if owner != rider_id:
                raise ValueError("not a cursor of this rider's rides")
            start = int(offset)
        page = [copy.deepcopy(row.ride) for _, row in rows[start : start + limit]]
        return page, f"{rider_id}:{start + limit}" if start + limit < len(rows) else None

    def versions(self, ride_id: str, after_version: int) -> list[dict[str, object]]:
        return [
            copy.deepcopy(v)
            for (rid, n), v in sorted(self._store.versions.items())
            if rid == ride_id and n > after_version
        ]

    def active(self) -> list[dict[str, object]]:
        rows = [row.ride for row in list(self._store.history.values()) if in_flight(row)]
        return [copy.deepcopy(r) for r in sorted(rows, key=lambda r: str(r["requestedAt"]), reverse=True)]

    def deadlines(self, limit: int) -> list[tuple[str, datetime]]:
        due = sorted((r.deadline, r.ride_id) for r in list(self._store.rides.values()) if r.deadline)
        return [(ride_id, deadline) for deadline, ride_id in due][:limit]


class StaticGeo:
    """A flat-earth city: places are what you ask for, trips are straight lines at 36 km/h."""

    def __init__(self, places: dict[str, Place] | None = None) -> None:
        self.places = places or {}

    def place_of_address(self, address_id: str) -> Place:
        if address_id not in self.places:
            raise AddressNotFound("no such address")
        return self.places[address_id]

    def place_at(self, lat: float, lon: float) -> Place:
        return Place(label=f"{lat:.4f},{lon:.4f}", lat=lat, lon=lon)

    def trip(self, pickup: Place, dropoff: Place) -> tuple[float, float]:
        distance = haversine_m(pickup.lat, pickup.lon, dropoff.lat, dropoff.lon)
        return distance, distance / 10


class StaticDispatch:
    """A fleet whose nearest car is ``eta_s`` away; ``assignments`` maps a ride to the car it assigned
    (``down`` makes it answer nothing)."""

    def __init__(self, eta_s: float | None = 120) -> None:
        self.eta_s = eta_s
        self.assignments: dict[str, str] = {}
        self.down = False
        self.asked: list[str] = []

    def pickup_eta(self, lat: float, lon: float) -> float | None:
        return self.eta_s

    def assigned_car(self, ride_id: str) -> str | None:
        self.asked.append(ride_id)
        if self.down:
            raise DependencyUnavailable("car-dispatcher did not answer")
        return self.assignments.get(ride_id)
