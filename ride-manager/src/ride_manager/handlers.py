"""Use cases of the ride context: one function per command, per event from another context, and per
deadline the watchdog finds due."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from acr import clock
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned, NoCarAvailable
from acr.catalog.monitoring import CarArrivedAtPickup, CarStalled, TripCompleted, TripStarted
from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.reward import RewardPointsEarned
from acr.catalog.ride import CancellationReason, RideUpdated
from acr.consumer import Handlers, Park, Stale
from acr.envelope import CloudEvent
from acr.errors import DependencyUnavailable
from acr.unit_of_work import Conflict
from ride_manager import domain
from ride_manager.commands import CancelRide, PlaceRef, RequestQuote, RequestRide
from ride_manager.domain import ACTIVE, Deadlines, Outcome, Quote, Ride, RideNotFound, RideStatus
from ride_manager.ports import Dispatch, Geo, IdempotencyRecord, UnitOfWork
from ride_manager.snapshot import ride_to_json

log = logging.getLogger(__name__)
UowFactory = Callable[[], UnitOfWork]


def save(uow: UnitOfWork, ride: Ride, expected_version: int | None, rules: Deadlines) -> None:
    """Stage the ride with the deadline of the state it is in now (every new version enters a state or
    gets a new car, so its deadline counts from now), its domain events and its new snapshot
    (``RideUpdated``) in ``uow``."""
    ride.deadline = rules.due(ride, clock.now())
    if expected_version is None:
        uow.rides.add(ride)
    else:
        uow.rides.save(ride, expected_version)
    if ride.status not in ACTIVE:
        uow.active_rides.release(ride.rider_id, ride.ride_id)  # idempotent: every save of an ended ride
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


def request_ride(
    cmd: RequestRide, *, uow_factory: UowFactory, key_ttl_s: float, rules: Deadlines, max_active: int
) -> Ride:
    """Book a quote, at most once per Idempotency-Key and once per quote (also under concurrent retries),
    while the rider has fewer than ``max_active`` rides not yet ended: the hold is a condition of the same
    transaction, so concurrent bookings cannot pass the cap."""
    for _ in range(3):
        uow = uow_factory()
        existing = _replay(uow, cmd)
        if existing is not None:
            return existing
        quote = uow.quotes.get(cmd.quote_id)
        if quote is None:
            raise domain.QuoteNotFound("no such quote")
        quote.check_bookable(cmd.rider_id, clock.now())
        if uow.active_rides.count(cmd.rider_id) >= max_active:
            raise domain.TooManyActiveRides(f"a rider may have {max_active} rides not yet ended")
        ride = Ride.request(f"ride_{uuid.uuid4().hex}", quote, clock.now())
        uow.keys.claim(
            IdempotencyRecord(cmd.rider_id, cmd.idempotency_key, cmd.body_hash, ride.ride_id), key_ttl_s
        )
        uow.quotes.mark_used(quote, ride.ride_id)
        uow.active_rides.hold(cmd.rider_id, ride.ride_id, max_active)
        save(uow, ride, None, rules)
        try:
            uow.commit()
            return ride
        except Conflict as conflict:
            if "idempotency" in conflict.labels or "active-rides" in conflict.labels:
                continue  # a concurrent retry won (replay its ride) or another booking took a hold
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


def cancel_ride(cmd: CancelRide, *, uow_factory: UowFactory, rules: Deadlines) -> Ride:
    """Rider cancel: idempotent on an already cancelled ride; 409 once the trip started (unless its car
    stalled)."""
    return _cancel(
        lambda uow: get_ride(uow, cmd.rider_id, cmd.ride_id),
        CancellationReason.RIDER_CANCELLED,
        uow_factory=uow_factory,
        rules=rules,
    )


def cancel_by_operator(ride_id: str, *, uow_factory: UowFactory, rules: Deadlines) -> Ride:
    """Operator cancel (no fee): idempotent on an already cancelled ride; 409 once the trip started
    (unless its car stalled) or the ride ended."""

    def find(uow: UnitOfWork) -> Ride:
        ride = uow.rides.get(ride_id)
        if ride is None:
            raise RideNotFound("no such ride")
        return ride

    return _cancel(find, CancellationReason.OPERATOR_CANCELLED, uow_factory=uow_factory, rules=rules)


def _cancel(
    find: Callable[[UnitOfWork], Ride],
    reason: CancellationReason,
    *,
    uow_factory: UowFactory,
    rules: Deadlines,
) -> Ride:
    for _ in range(5):
        uow = uow_factory()
        ride = find(uow)
        if ride.status == RideStatus.CANCELLED:
            return ride
        expected = ride.version
        ride.cancel(reason, clock.now())
        save(uow, ride, expected, rules)
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
def _load(uow: UnitOfWork, ride_id: str) -> Ride:
    ride = uow.rides.get(ride_id)
    if ride is None:
        raise Park(f"ride {ride_id} does not exist yet")  # an update before its create: try again later
    return ride


def _check(ride: Ride, outcome: Outcome) -> None:
    """Park an event the ride is not ready for (it comes back later); drop one about a step it is past."""
    if outcome == Outcome.EARLY:
        raise Park(f"ride {ride.ride_id} is {ride.status}: not ready for this event yet")
    if outcome == Outcome.STALE:
        raise Stale(f"ride {ride.ride_id} is {ride.status}: already past this event")


def _apply(uow: UnitOfWork, ride_id: str, change: Callable[[Ride], Outcome], rules: Deadlines) -> None:
    """Load, apply ``change`` and stage the result as the ride's next version."""
    ride = _load(uow, ride_id)
    expected = ride.version
    _check(ride, change(ride))
    save(uow, ride, expected, rules)


def on_car_assigned(uow: UnitOfWork, data: CarAssigned, event: CloudEvent, *, rules: Deadlines) -> None:
    _apply(
        uow,
        data.ride_id,
        lambda r: r.assign_car(data.car_id, data.pickup_eta_seconds, event.time, event.sequence),
        rules,
    )


def on_no_car_available(
    uow: UnitOfWork, data: NoCarAvailable, event: CloudEvent, *, rules: Deadlines
) -> None:
    def change(ride: Ride) -> Outcome:
        if ride.status != RideStatus.REQUESTED:
            return Outcome.STALE
        ride.cancel(CancellationReason.NO_CAR_AVAILABLE, event.time)
        return Outcome.APPLIED

    _apply(uow, data.ride_id, change, rules)


def on_car_arrived(uow: UnitOfWork, data: CarArrivedAtPickup, event: CloudEvent, *, rules: Deadlines) -> None:
    _apply(uow, data.ride_id, lambda r: r.car_arrived(data.car_id, event.time), rules)


def on_trip_started(uow: UnitOfWork, data: TripStarted, event: CloudEvent, *, rules: Deadlines) -> None:
    _apply(uow, data.ride_id, lambda r: r.trip_started(data.car_id, event.time), rules)


def on_trip_completed(uow: UnitOfWork, data: TripCompleted, event: CloudEvent, *, rules: Deadlines) -> None:
    _apply(
        uow,
        data.ride_id,
        lambda r: r.complete(data.car_id, data.distance_meters, data.duration_seconds, event.time),
        rules,
    )


def on_car_stalled(uow: UnitOfWork, data: CarStalled, _event: CloudEvent) -> None:
    """Record that the ride's car stalled, on the ride at its current version (no new version)."""
    if data.ride_id is None:
        return  # an idle car: no ride to tell
    ride = _load(uow, data.ride_id)
    _check(ride, ride.car_stalled(data.car_id))
    uow.rides.touch(ride)


def on_payment_succeeded(
    uow: UnitOfWork, data: PaymentSucceeded, event: CloudEvent, *, rules: Deadlines
) -> None:
    _apply(
        uow,
        data.ride_id,
        lambda r: r.payment_settled(True, data.payment_id, data.amount, event.time, event.sequence),
        rules,
    )


def on_payment_failed(uow: UnitOfWork, data: PaymentFailed, event: CloudEvent, *, rules: Deadlines) -> None:
    _apply(
        uow,
        data.ride_id,
        lambda r: r.payment_settled(False, data.payment_id, data.amount, event.time, event.sequence),
        rules,
    )


def on_points_earned(
    uow: UnitOfWork, data: RewardPointsEarned, event: CloudEvent, *, rules: Deadlines
) -> None:
    _apply(uow, data.ride_id, lambda r: r.points_recorded(data.points, event.time), rules)


def handlers(*, rules: Deadlines) -> Handlers[UnitOfWork]:
    """The table of ``acr-ride-manager-events``."""
    return (
        Handlers[UnitOfWork]()
        .on(CarAssigned, on_car_assigned, rules=rules)
        .on(NoCarAvailable, on_no_car_available, rules=rules)
        .on(CarArrivedAtPickup, on_car_arrived, rules=rules)
        .on(TripStarted, on_trip_started, rules=rules)
        .on(TripCompleted, on_trip_completed, rules=rules)
        .on(CarStalled, on_car_stalled)
        .on(PaymentSucceeded, on_payment_succeeded, rules=rules)
        .on(PaymentFailed, on_payment_failed, rules=rules)
        .on(RewardPointsEarned, on_points_earned, rules=rules)
    )


# --- deadlines ---------------------------------------------------------------------------------------
class Nudge(StrEnum):
    """What the watchdog did with a ride whose deadline it found due."""

    NOT_DUE = "NOT_DUE"  # the ride moved on (or its deadline moved) since the index was read
    EXTENDED = "EXTENDED"  # REQUESTED, but the fleet holds a car for it: its CarAssigned is on its way
    ENDED = "ENDED"  # cancelled with the system's own reason (no fee; the dispatcher frees the car)
    RESENT = "RESENT"  # COMPLETED without a payment outcome: RideCompleted recorded again


def on_deadline(ride_id: str, *, uow_factory: UowFactory, rules: Deadlines, dispatch: Dispatch) -> Nudge:
    """Act on a ride whose deadline passed, read again first; a ride that moved on meanwhile fails the
    commit's version condition and is left as it is now."""
    uow = uow_factory()
    ride = uow.rides.get(ride_id)
    now = clock.now()
    if ride is None or ride.deadline is None or ride.deadline > now:
        return Nudge.NOT_DUE
    nudge = _nudge(uow, ride, now, rules, dispatch)
    try:
        uow.commit()
    except Conflict:
        return Nudge.NOT_DUE
    return nudge


def _nudge(uow: UnitOfWork, ride: Ride, now: datetime, rules: Deadlines, dispatch: Dispatch) -> Nudge:
    completed = ride.completion()
    if completed is not None:  # payment is idempotent by ride id: asking again never charges twice
        uow.record(completed, subject=ride.ride_id, sequence=ride.version)
        ride.deadline = rules.resend_at(now)
        uow.rides.touch(ride)
        return Nudge.RESENT
    later = _assignment_wait(ride, now, rules, dispatch) if ride.status == RideStatus.REQUESTED else None
    if later is not None:
        ride.deadline = later
        uow.rides.touch(ride)
        return Nudge.EXTENDED
    expected = ride.version
    ride.expire(now)
    save(uow, ride, expected, rules)
    return Nudge.ENDED


def _assignment_wait(ride: Ride, now: datetime, rules: Deadlines, dispatch: Dispatch) -> datetime | None:
    """A later deadline when the fleet assigned a car to the ride (or cannot say now); None to end it."""
    try:
        car_id = dispatch.assigned_car(ride.ride_id)
    except DependencyUnavailable as unavailable:
        log.warning("ride %s: the fleet did not say whether it assigned a car: %s", ride.ride_id, unavailable)
        return rules.extended(ride, now)
    return rules.extended(ride, now) if car_id is not None else None
