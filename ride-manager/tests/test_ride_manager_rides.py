"""The ride use cases against in-memory adapters: no emulator, no network."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from ride_manager_fakes import MemoryRideHistory, MemoryRideUnitOfWork, RideStore, StaticDispatch, StaticGeo

from acr import catalog, clock
from acr.catalog.base import RIDE_UPDATES, Destination, Place
from acr.catalog.fleet import CarAssigned, NoCarAvailable
from acr.catalog.monitoring import CarArrivedAtPickup, TripCompleted, TripStarted
from acr.catalog.ride import CancellationReason
from acr.consumer import MessageHandler, Park, Stale, idempotent
from acr.money import Money
from acr.unit_of_work import Duplicate
from ride_manager import domain, handlers
from ride_manager.commands import CancelRide, PlaceRef, RequestQuote, RequestRide
from ride_manager.domain import Deadlines, RideStatus
from ride_manager.timers import Watchdog

MAX_ACTIVE = 3  # ACR_MAX_ACTIVE_RIDES' default

RULES = Deadlines(dispatch_timeout_s=30)

A = Place(label="1 Harbour Street, 00100", lat=60.16, lon=24.93, address_id="A1")
B = Place(label="9 Station Road, 00130", lat=60.18, lon=24.96, address_id="A2")


@pytest.fixture
def store() -> RideStore:
    return RideStore()


def _quote(store: RideStore, rider: str = "rdr_1", ttl_s: float = 300) -> domain.Quote:
    return handlers.request_quote(
        RequestQuote(rider, PlaceRef("A1"), PlaceRef("A2")),
        geo=StaticGeo({"A1": A, "A2": B}),
        dispatch=StaticDispatch(90),
        uow=MemoryRideUnitOfWork(store),
        ttl_s=ttl_s,
    )


def _book(
    store: RideStore, quote_id: str, key: str = "k1", rider: str = "rdr_1", body: str = "h1"
) -> domain.Ride:
    return handlers.request_ride(
        RequestRide(rider, quote_id, key, body),
        uow_factory=lambda: MemoryRideUnitOfWork(store),
        key_ttl_s=86400,
        max_active=MAX_ACTIVE,
        rules=RULES,
    )


def test_a_quote_prices_the_trip_and_books_one_ride_with_its_events(store: RideStore) -> None:
    quote = _quote(store)
    assert quote.pickup_eta_s == 90 and quote.fare == domain.fare_for(quote.distance_m, quote.trip_duration_s)
    ride = _book(store, quote.quote_id)
    assert (ride.status, ride.version, ride.quoted_fare) == (RideStatus.REQUESTED, 1, quote.fare)
    types = [o.event.type for o in store.outbox]
    assert types == ["acme.acr.ride.RideRequested", "acme.acr.ride.RideUpdated"]
    assert store.outbox[1].group == ride.ride_id and store.outbox[1].event.sequence == 1
    # where each goes comes from the catalog: the ride bus, and the updates topic for the snapshots
    assert [o.destination for o in store.outbox] == [Destination("bus", "acr-ride"), RIDE_UPDATES]


def test_the_same_idempotency_key_returns_the_same_ride(store: RideStore) -> None:
    quote = _quote(store)
    first = _book(store, quote.quote_id)
    again = _book(store, quote.quote_id)
    assert again.ride_id == first.ride_id and len(store.rides) == 1
    with pytest.raises(domain.IdempotencyKeyConflict):
        _book(store, quote.quote_id, body="another body")


def test_a_quote_books_at_most_one_ride(store: RideStore) -> None:
    quote = _quote(store)
    _book(store, quote.quote_id, key="k1")
    with pytest.raises(domain.QuoteAlreadyUsed):
        _book(store, quote.quote_id, key="k2")


def test_a_concurrent_retry_with_the_same_key_gets_the_winners_ride(store: RideStore) -> None:
    quote = _quote(store)
    calls = {"n": 0}

    def racing_uow() -> MemoryRideUnitOfWork:
        def before_commit() -> None:
            calls["n"] += 1
            if calls["n"] == 1:  # another request with the same key commits first
                _book(store, quote.quote_id)

        return MemoryRideUnitOfWork(store, before_commit)

    ride = handlers.request_ride(
        RequestRide("rdr_1", quote.quote_id, "k1", "h1"),
        uow_factory=racing_uow,
        key_ttl_s=86400,
        rules=RULES,
        max_active=MAX_ACTIVE,
    )
    assert len(store.rides) == 1 and ride.ride_id in store.rides


def test_a_rider_books_at_most_the_cap_of_rides_not_yet_ended(store: RideStore) -> None:
    quotes = [_quote(store).quote_id for _ in range(MAX_ACTIVE)]
    booked = [_book(store, quote_id, key=f"k{n}") for n, quote_id in enumerate(quotes)]
    with pytest.raises(domain.TooManyActiveRides):
        _book(store, _quote(store).quote_id, key="one-too-many")
    assert len(store.rides) == MAX_ACTIVE
    assert _book(store, quotes[0], key="k0").ride_id == booked[0].ride_id  # a retry still replays
    _book(store, _quote(store, rider="rdr_2").quote_id, rider="rdr_2")  # the cap is per rider
    handlers.cancel_ride(
        CancelRide("rdr_1", booked[0].ride_id), uow_factory=lambda: MemoryRideUnitOfWork(store), rules=RULES
    )
    assert _book(store, _quote(store).quote_id, key="after-cancel").status == RideStatus.REQUESTED


def test_concurrent_bookings_of_one_rider_never_pass_the_cap(store: RideStore) -> None:
    """Each booking reads a count under the cap; the one whose commit comes second finds the hold taken."""
    for n in range(MAX_ACTIVE - 1):
        _book(store, _quote(store).quote_id, key=f"k{n}")
    raced = {"done": False}

    def racing_uow() -> MemoryRideUnitOfWork:
        def before_commit() -> None:
            if not raced["done"]:  # another booking of the same rider commits between count and commit
                raced["done"] = True
                _book(store, _quote(store).quote_id, key="the-other-booking")

        return MemoryRideUnitOfWork(store, before_commit)

    with pytest.raises(domain.TooManyActiveRides):
        handlers.request_ride(
            RequestRide("rdr_1", _quote(store).quote_id, "mine", "h1"),
            uow_factory=racing_uow,
            key_ttl_s=86400,
            rules=RULES,
            max_active=MAX_ACTIVE,
        )
    assert len(store.rides) == MAX_ACTIVE and len(store.holds["rdr_1"]) == MAX_ACTIVE


def test_expired_and_foreign_quotes_are_refused(store: RideStore) -> None:
    expired = _quote(store, ttl_s=0.000001)
    with pytest.raises(domain.QuoteExpired):
        _book(store, expired.quote_id)
    mine = _quote(store)
    with pytest.raises(domain.QuoteNotFound):
        _book(store, mine.quote_id, rider="rdr_2")


def test_car_assigned_moves_the_ride_on_once_and_duplicates_are_discarded(store: RideStore) -> None:
    ride = _book(store, _quote(store).quote_id)
    assigned = _car_assigned(ride.ride_id, "car-00001")
    event = catalog.record(assigned, subject=ride.ride_id)
    handle = _consumer(store)
    handle(event, assigned)
    stored = store.rides[ride.ride_id]
    assert (stored.status, stored.version, stored.car_id) == (RideStatus.CAR_ASSIGNED, 2, "car-00001")
    with pytest.raises((Duplicate, Stale)):
        handle(event.resent(), assigned)
    assert store.rides[ride.ride_id].version == 2


def test_car_assigned_is_ordered_by_its_sequence_the_fleets_dispatch_count(store: RideStore) -> None:
    ride = _book(store, _quote(store).quote_id)
    handle = _consumer(store)
    first, replacement = _car_assigned(ride.ride_id, "car-1"), _car_assigned(ride.ride_id, "car-2")
    early = catalog.record(replacement, subject=ride.ride_id, sequence=2)
    with pytest.raises(Park):  # the replacement overtook the first car: it waits for it
        handle(early, replacement)
    assert store.rides[ride.ride_id].status == RideStatus.REQUESTED
    handle(catalog.record(first, subject=ride.ride_id, sequence=1), first)
    handle(early.resent(), replacement)  # the parked one comes again: now it is the next
    stored = store.rides[ride.ride_id]
    assert (stored.status, stored.car_id, stored.car_sequence, stored.version) == (
        RideStatus.CAR_ASSIGNED,
        "car-2",
        2,
        3,
    )
    with pytest.raises(Stale):  # another copy of the first car (a second relay): not newer, dropped
        handle(catalog.record(first, subject=ride.ride_id, sequence=1), first)
    # the sequence, not the cars it had, decides: the first car, back in service, may replace the second
    handle(catalog.record(first, subject=ride.ride_id, sequence=3), first)
    assert (store.rides[ride.ride_id].car_id, store.rides[ride.ride_id].car_sequence) == ("car-1", 3)


def test_a_car_assigned_that_lost_the_race_to_a_cancel_is_handled_again_and_found_stale(
    store: RideStore,
) -> None:
    ride = _book(store, _quote(store).quote_id)
    assigned = _car_assigned(ride.ride_id, "car-1")
    raced: list[str] = []

    def the_rider_cancels_first() -> None:
        if not raced:
            raced.append("cancel")
            handlers.cancel_ride(
                CancelRide("rdr_1", ride.ride_id),
                uow_factory=lambda: MemoryRideUnitOfWork(store),
                rules=RULES,
            )

    handle = idempotent(
        lambda: MemoryRideUnitOfWork(store, the_rider_cancels_first), handlers.handlers(rules=RULES)
    )
    with pytest.raises(Stale):  # the second run reads the cancelled ride: the car comes too late
        handle(catalog.record(assigned, subject=ride.ride_id), assigned)
    stored = store.rides[ride.ride_id]
    assert (stored.status, stored.version, stored.car_id) == (RideStatus.CANCELLED, 2, None)
    assert store.markers == set()


def test_no_car_available_cancels_with_its_reason(store: RideStore) -> None:
    ride = _book(store, _quote(store).quote_id)
    none = NoCarAvailable(ride_id=ride.ride_id, reason="none")
    _consumer(store)(catalog.record(none, subject=ride.ride_id), none)
    stored = store.rides[ride.ride_id]
    assert stored.status == RideStatus.CANCELLED and stored.cancellation
    assert stored.cancellation.reason == CancellationReason.NO_CAR_AVAILABLE
    assert store.outbox[-2].event.type == "acme.acr.ride.RideCancelled"


def test_rider_cancel_is_idempotent_and_charges_a_fee_only_after_arrival(store: RideStore) -> None:
    ride = _book(store, _quote(store).quote_id)
    cancelled = handlers.cancel_ride(
        CancelRide("rdr_1", ride.ride_id), uow_factory=lambda: MemoryRideUnitOfWork(store), rules=RULES
    )
    again = handlers.cancel_ride(
        CancelRide("rdr_1", ride.ride_id), uow_factory=lambda: MemoryRideUnitOfWork(store), rules=RULES
    )
    assert (
        cancelled.cancellation and cancelled.cancellation.fee is None and again.version == cancelled.version
    )

    arrived = domain.Ride.request("r2", _quote(store), clock.now())
    arrived.assign_car("car-1", 10, clock.now())
    arrived.car_arrived("car-1", clock.now())
    arrived.cancel(CancellationReason.RIDER_CANCELLED, clock.now())
    assert arrived.cancellation and arrived.cancellation.fee == Money.of("5.00", "EUR")


def test_the_final_fare_never_exceeds_the_quote() -> None:
    quote = domain.Quote(
        "q", "rdr", A, B, 60, 600, 5000, Decimal("10.00"), clock.now() + timedelta(minutes=5)
    )
    ride = domain.Ride.request("r", quote, clock.now())
    ride.assign_car("car-1", 10, clock.now())
    ride.car_arrived("car-1", clock.now())
    ride.trip_started("car-1", clock.now())
    assert ride.complete("car-1", 50_000, 6000, clock.now()) == domain.Outcome.APPLIED
    assert ride.fare == Decimal("10.00") and ride.status == RideStatus.COMPLETED and ride.version == 5


def _car_assigned(ride_id: str, car_id: str) -> CarAssigned:
    return CarAssigned(
        ride_id=ride_id,
        car_id=car_id,
        car_lat=60.1,
        car_lon=24.9,
        pickup=A,
        dropoff=B,
        pickup_eta_seconds=80,
        assigned_at=clock.parse("2026-01-01T00:00:00Z"),
    )


def _consumer(store: RideStore) -> MessageHandler:
    return idempotent(lambda: MemoryRideUnitOfWork(store), handlers.handlers(rules=RULES))


def test_events_that_arrive_early_are_parked_and_late_ones_are_stale(store: RideStore) -> None:
    ride = _book(store, _quote(store).quote_id)
    handle = _consumer(store)
    facts = [
        _car_assigned(ride.ride_id, "car-1"),
        CarArrivedAtPickup(ride_id=ride.ride_id, car_id="car-1", at=clock.now()),
        TripStarted(ride_id=ride.ride_id, car_id="car-1", at=clock.now()),
        TripCompleted(
            ride_id=ride.ride_id, car_id="car-1", distance_meters=900, duration_seconds=120, at=clock.now()
        ),
    ]
    events = [catalog.record(f, subject=ride.ride_id) for f in facts]
    for late in (3, 2, 1):  # reordered delivery: every step before its predecessor waits
        with pytest.raises(Park):
            handle(events[late], facts[late])
    for event, fact in zip(events, facts, strict=True):  # then in order: each applies
        handle(event, fact)
    assert store.rides[ride.ride_id].status == RideStatus.COMPLETED
    with pytest.raises(Stale):  # a replay with a new id (no marker) is past: dropped, not applied twice
        handle(catalog.record(facts[2], subject=ride.ride_id), facts[2])
    assert store.rides[ride.ride_id].version == 5


def test_the_dispatch_timeout_cancels_overdue_rides_then_the_watchdog_sleeps_until_the_next_one_is_due(
    store: RideStore,
) -> None:
    overdue = _book(store, _quote(store).quote_id, key="k-overdue")
    waiting = _book(store, _quote(store).quote_id, key="k-waiting")
    store.rides[overdue.ride_id].deadline = clock.now() - timedelta(seconds=15)
    store.rides[waiting.ride_id].deadline = clock.now() + timedelta(seconds=10)
    timer = Watchdog(
        history=MemoryRideHistory(store),
        uow_factory=lambda: MemoryRideUnitOfWork(store),
        rules=RULES,
        dispatch=StaticDispatch(),
    )

    wait_s = timer.tick()

    assert store.rides[overdue.ride_id].status == RideStatus.CANCELLED
    cancellation = store.rides[overdue.ride_id].cancellation
    assert cancellation and cancellation.reason == CancellationReason.DISPATCH_TIMEOUT
    assert store.rides[waiting.ride_id].status == RideStatus.REQUESTED
    assert 9 < wait_s <= 10  # the waiting ride falls due 10 s from now


def test_the_watchdog_waits_one_horizon_when_no_ride_has_a_deadline(store: RideStore) -> None:
    timer = Watchdog(
        history=MemoryRideHistory(store),
        uow_factory=lambda: MemoryRideUnitOfWork(store),
        rules=RULES,
        dispatch=StaticDispatch(),
    )
    assert timer.tick() == 30 == RULES.horizon_s
