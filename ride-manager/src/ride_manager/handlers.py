"""Use cases of the ride context: one function per command, per event from another context, and the
dispatch timeout."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from acr import clock
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned, NoCarAvailable
from acr.catalog.monitoring import CarArrivedAtPickup, TripCompleted, TripStarted
from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.reward import RewardPointsEarned
from acr.catalog.ride import CancellationReason, RideUpdated
from acr.consumer import Handlers, Park, Stale
from acr.envelope import CloudEvent
from acr.unit_of_work import Conflict
from ride_manager import domain
from ride_manager.commands import CancelRide, PlaceRef, RequestQuote, RequestRide
from ride_manager.domain import Outcome, Quote, Ride, RideNotFound, RideStatus
from ride_manager.ports import Dispatch, Geo, IdempotencyRecord, UnitOfWork
from ride_manager.snapshot import ride_to_json

UowFactory = Callable[[], UnitOfWork]


def save(uow: UnitOfWork, ride: Ride, expected_version: int | None) -> None:
    """Stage the ride, its domain events and its new snapshot (``RideUpdated``) in ``uow``."""
    if expected_version is None:
        uow.rides.add(ride)
    else:
        uow.rides.save(ride, expected_version)
    for data in ride.pull_events():
        uow.record(data, subject=ride.ride_id, sequence=ride.version)
    snapshot = RideUpdated(
        ride_id=ride.ride_id, rider_id=ride.rider_id, version=ride.version, ride=ride_to_json(ride)
    )
    uow.record(snapshot, subject=ride.ride_id, sequence=ride.version)


# --- commands ----------------------------------------------------------------------------------------
def _resolve(geo: Geo, ref: PlaceRef) -> Place:
    if ref.address_id is not None:
        return geo.place_of_address(ref.address_id)
    assert ref.lat is not None and ref.lon is not None
    return geo.place_at(ref.lat, ref.lon)


def request_quote(cmd: RequestQuote, *, geo: Geo, dispatch: Dispatch, uow: UnitOfWork, ttl_s: float) -> Quote:
    """Price a trip and the nearest car's pickup ETA; the quote reserves no car."""
    pickup, dropoff = _resolve(geo, cmd.pickup), _resolve(geo, cmd.dropoff)
    pickup_eta = dispatch.pickup_eta(pickup.lat, pickup.lon)
    if pickup_eta is None:
        raise domain.NoCarNearby("no car can reach the pickup in time right now")
    distance_m, duration_s = geo.trip(pickup, dropoff)
    quote = Quote(
        quote_id=f"qte_{uuid.uuid4().hex}",
        rider_id=cmd.rider_id,
        pickup=pickup,
        dropoff=dropoff,
        pickup_eta_s=pickup_eta,
        trip_duration_s=duration_s,
        distance_m=distance_m,
        fare=domain.fare_for(distance_m, duration_s),
        expires_at=clock.now() + timedelta(seconds=ttl_s),
    )
    uow.quotes.add(quote)
    uow.commit()
    return quote


def request_ride(cmd: RequestRide, *, uow_factory: UowFactory, key_ttl_s: float) -> Ride:
    """Book a quote, at most once per Idempotency-Key and once per quote (also under concurrent retries)."""
    for _ in range(3):
        uow = uow_factory()
        existing = _replay(uow, cmd)
        if existing is not None:
            return existing
        quote = uow.quotes.get(cmd.quote_id)
        if quote is None:
            raise domain.QuoteNotFound("no such quote")
        quote.check_bookable(cmd.rider_id, clock.now())
        ride = Ride.request(f"ride_{uuid.uuid4().hex}", quote, clock.now())
        uow.keys.claim(
            IdempotencyRecord(cmd.rider_id, cmd.idempotency_key, cmd.body_hash, ride.ride_id), key_ttl_s
        )
        uow.quotes.mark_used(quote, ride.ride_id)
        save(uow, ride, None)
        try:
            uow.commit()
            return ride
        except Conflict as conflict:
            if "idempotency" in conflict.labels:
                continue  # a concurrent retry with the same key won: replay its ride
            raise domain.QuoteAlreadyUsed("this quote already booked a ride") from conflict
    raise Conflict(["idempotency"])


def _replay(uow: UnitOfWork, cmd: RequestRide) -> Ride | None:
    record = uow.keys.get(cmd.rider_id, cmd.idempotency_key)
    if record is None:
        return None
    if record.body_hash != cmd.body_hash:
        raise domain.IdempotencyKeyConflict("this Idempotency-Key was used with another request body")
    ride = uow.rides.get(record.ride_id)
    if ride is None:
        raise RideNotFound("the ride of this Idempotency-Key is gone")
    return ride


def cancel_ride(cmd: CancelRide, *, uow_factory: UowFactory) -> Ride:
    """Rider cancel: idempotent on an already cancelled ride; 409 once the trip started."""
    for _ in range(5):
        uow = uow_factory()
        ride = get_ride(uow, cmd.rider_id, cmd.ride_id)
        if ride.status == RideStatus.CANCELLED:
            return ride
        expected = ride.version
        ride.cancel(CancellationReason.RIDER_CANCELLED, clock.now())
        save(uow, ride, expected)
        try:
            uow.commit()
            return ride
        except Conflict:
            continue  # the ride moved on meanwhile: decide again on its new state
    raise Conflict(["ride"])


def get_ride(uow: UnitOfWork, rider_id: str, ride_id: str) -> Ride:
    ride = uow.rides.get(ride_id)
    if ride is None or ride.rider_id != rider_id:
        raise RideNotFound("no such ride")
    return ride


# --- events from other contexts ----------------------------------------------------------------------
def _apply(uow: UnitOfWork, ride_id: str, change: Callable[[Ride], Outcome]) -> None:
    """Load, apply ``change`` and stage the result. An event the ride is not ready for is parked (it comes
    back later); one about a step the ride is past is dropped as stale."""
    ride = uow.rides.get(ride_id)
    if ride is None:
        raise Park(f"ride {ride_id} does not exist yet")  # an update before its create: try again later
    expected = ride.version
    outcome = change(ride)
    if outcome == Outcome.EARLY:
        raise Park(f"ride {ride_id} is {ride.status}: not ready for this event yet")
    if outcome == Outcome.STALE:
        raise Stale(f"ride {ride_id} is {ride.status}: already past this event")
    save(uow, ride, expected)


def on_car_assigned(uow: UnitOfWork, data: CarAssigned, event: CloudEvent) -> None:
    _apply(uow, data.ride_id, lambda r: r.assign_car(data.car_id, data.pickup_eta_seconds, event.time))


def on_no_car_available(uow: UnitOfWork, data: NoCarAvailable, event: CloudEvent) -> None:
    def change(ride: Ride) -> Outcome:
        if ride.status != RideStatus.REQUESTED:
            return Outcome.STALE
        ride.cancel(CancellationReason.NO_CAR_AVAILABLE, event.time)
        return Outcome.APPLIED

    _apply(uow, data.ride_id, change)


def on_car_arrived(uow: UnitOfWork, data: CarArrivedAtPickup, event: CloudEvent) -> None:
    _apply(uow, data.ride_id, lambda r: r.car_arrived(data.car_id, event.time))


def on_trip_started(uow: UnitOfWork, data: TripStarted, event: CloudEvent) -> None:
    _apply(uow, data.ride_id, lambda r: r.trip_started(data.car_id, event.time))


def on_trip_completed(uow: UnitOfWork, data: TripCompleted, event: CloudEvent) -> None:
    _apply(
        uow,
        data.ride_id,
        lambda r: r.complete(data.car_id, data.distance_meters, data.duration_seconds, event.time),
    )


def on_payment_succeeded(uow: UnitOfWork, data: PaymentSucceeded, event: CloudEvent) -> None:
    _apply(uow, data.ride_id, lambda r: r.payment_settled(True, data.payment_id, data.amount, event.time))


def on_payment_failed(uow: UnitOfWork, data: PaymentFailed, event: CloudEvent) -> None:
    _apply(uow, data.ride_id, lambda r: r.payment_settled(False, data.payment_id, data.amount, event.time))


def on_points_earned(uow: UnitOfWork, data: RewardPointsEarned, event: CloudEvent) -> None:
    _apply(uow, data.ride_id, lambda r: r.points_recorded(data.points, event.time))


HANDLERS = (
    Handlers[UnitOfWork]()
    .on(CarAssigned, on_car_assigned)
    .on(NoCarAvailable, on_no_car_available)
    .on(CarArrivedAtPickup, on_car_arrived)
    .on(TripStarted, on_trip_started)
    .on(TripCompleted, on_trip_completed)
    .on(PaymentSucceeded, on_payment_succeeded)
    .on(PaymentFailed, on_payment_failed)
    .on(RewardPointsEarned, on_points_earned)
)


# --- timers ------------------------------------------------------------------------------------------
def time_out_dispatch(ride_id: str, *, uow_factory: UowFactory, timeout_s: float) -> bool:
    """Cancel a ride still waiting for a car after the dispatch timeout; True if it was cancelled.
    A car assigned later is released by the dispatcher when it sees the ``RideCancelled``."""
    uow = uow_factory()
    ride = uow.rides.get(ride_id)
    if ride is None or ride.status != RideStatus.REQUESTED:
        return False
    now = clock.now()
    if (now - ride.requested_at).total_seconds() < timeout_s:
        return False
    expected = ride.version
    ride.cancel(CancellationReason.DISPATCH_TIMEOUT, now)
    save(uow, ride, expected)
    try:
        uow.commit()
    except Conflict:
        return False  # a car came meanwhile: the ride moved on
    return True
