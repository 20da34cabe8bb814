"""The Ride aggregate, quotes and fares. Pure Python: no FastAPI, no boto3.

Every state change bumps ``version`` by one (a new status also goes on the timeline) and collects the
domain events it causes; the transition table is docs/architecture.md's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from acr.catalog.base import EventData, Place
from acr.catalog.ride import CancellationReason, RideCancelled, RideCompleted, RideRequested
from acr.errors import ServiceError
from acr.money import Money
from acr.ordering import Order, order

CENT = Decimal("0.01")
BASE_FARE = Decimal("2.50")
PER_KM = Decimal("1.10")
PER_MINUTE = Decimal("0.25")
CANCELLATION_FEE = Decimal("5.00")
CURRENCY = "EUR"


class RideStatus(StrEnum):
    REQUESTED = "REQUESTED"
    CAR_ASSIGNED = "CAR_ASSIGNED"
    CAR_ARRIVED = "CAR_ARRIVED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    PAID = "PAID"
    CANCELLED = "CANCELLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"


ACTIVE = frozenset(
    {RideStatus.REQUESTED, RideStatus.CAR_ASSIGNED, RideStatus.CAR_ARRIVED, RideStatus.IN_PROGRESS}
)
CANCELLABLE = frozenset({RideStatus.REQUESTED, RideStatus.CAR_ASSIGNED, RideStatus.CAR_ARRIVED})
BEFORE_TRIP = CANCELLABLE
BY_PEOPLE = frozenset({CancellationReason.RIDER_CANCELLED, CancellationReason.OPERATOR_CANCELLED})
SYSTEM_END = {  # the reason the system gives when an active state outlives its deadline
    RideStatus.REQUESTED: CancellationReason.DISPATCH_TIMEOUT,
    RideStatus.CAR_ASSIGNED: CancellationReason.CAR_NOT_ARRIVED,
    RideStatus.CAR_ARRIVED: CancellationReason.TRIP_NOT_STARTED,
    RideStatus.IN_PROGRESS: CancellationReason.TRIP_INTERRUPTED,
}


class Outcome(StrEnum):
    """What an event from another context did to a ride."""

    APPLIED = "APPLIED"
    STALE = "STALE"  # about a step the ride is past (or a duplicate in effect): drop it
    EARLY = "EARLY"  # about a step the ride has not reached yet: apply it later


class QuoteNotFound(ServiceError):
    status, code = 404, "quote_not_found"


class QuoteExpired(ServiceError):
    status, code = 409, "quote_expired"


class QuoteAlreadyUsed(ServiceError):
    status, code = 409, "quote_already_used"


class RideNotFound(ServiceError):
    status, code = 404, "ride_not_found"


class NotCancellable(ServiceError):
    status, code = 409, "not_cancellable"


class IdempotencyKeyConflict(ServiceError):
    status, code = 409, "idempotency_key_conflict"


class TooManyActiveRides(ServiceError):
    """The rider already has as many rides not yet ended as one rider may (``ACR_MAX_ACTIVE_RIDES``): one
    rider cannot keep the fleet reserved."""

    status, code = 409, "too_many_active_rides"


class NoCarNearby(ServiceError):
    """No available car can reach the pickup right now (a quote is refused)."""

    status, code = 409, "no_car_available"


class OutsideServiceArea(ServiceError):
    status, code = 422, "outside_service_area"


class AddressNotFound(ServiceError):
    status, code = 404, "address_not_found"


def fare_for(distance_m: float, duration_s: float) -> Decimal:
    """Base fare + distance + time, rounded to cents."""
    fare = BASE_FARE + PER_KM * Decimal(str(distance_m)) / 1000 + PER_MINUTE * Decimal(str(duration_s)) / 60
    return fare.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    rider_id: str
    pickup: Place
    dropoff: Place
    pickup_eta_s: float
    trip_duration_s: float
    distance_m: float
    fare: Decimal
    expires_at: datetime
    ride_id: str | None = None

    def check_bookable(self, rider_id: str, at: datetime) -> None:
        """Raise unless ``rider_id`` may book this quote at ``at``."""
        if self.rider_id != rider_id:
            raise QuoteNotFound("no such quote")
        if self.ride_id is not None:
            raise QuoteAlreadyUsed("this quote already booked a ride")
        if at >= self.expires_at:
            raise QuoteExpired("the quote has expired; ask for a new one")


@dataclass(frozen=True)
class TimelineEntry:
    """A status the ride reached, when, and the car it had then."""

    status: RideStatus
    at: datetime
    car_id: str | None


@dataclass(frozen=True)
class Cancellation:
    """Why and when the ride was cancelled, and the fee the rider owes for it (if any)."""

    reason: CancellationReason
    fee: Money | None
    at: datetime


class PaymentStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Payment:
    """The last payment outcome the ride heard of (its fare's, or its cancellation fee's), and its place in
    the payment's sequence of outcomes (None when the event carried none)."""

    status: PaymentStatus
    payment_id: str
    amount: Money
    sequence: int | None = None

    def order_after(self, recorded: Payment | None) -> Order:
        """Where this outcome stands after ``recorded``: payment tells every outcome of a ride's payment,
        1, 2, 3..., so one beyond the next comes early (the one between is on its way) and one not newer is
        stale. Without a sequence on either side (recorded before outcomes carried one) it applies."""
        return order(0 if recorded is None else recorded.sequence, self.sequence)


@dataclass
class Ride:
    """The Ride aggregate (write model)."""

    ride_id: str
    rider_id: str
    pickup: Place
    dropoff: Place
    quoted_fare: Decimal
    quoted_distance_m: float
    quoted_duration_s: float
    requested_at: datetime
    updated_at: datetime
    status: RideStatus = RideStatus.REQUESTED
    version: int = 1
    car_id: str | None = None
    fare: Decimal | None = None
    distance_m: float | None = None
    duration_s: float | None = None
    pickup_eta_s: float | None = None
    arrival_eta_s: float | None = None
    cancellation: Cancellation | None = None
    payment: Payment | None = None
    points_earned: int | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    # when the system ends the ride (COMPLETED: asks payment again) if it is still in this state
    deadline: datetime | None = None
    stalled_car_id: str | None = None  # the last car reported stalled while it served this ride
    # the sequence of the last CarAssigned applied (the fleet's dispatch count: 1 the first car, 2 its
    # replacement...); 0 none yet, None when the applied one carried none (recorded before it was sequenced)
    car_sequence: int | None = 0
    events: list[EventData] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def request(cls, ride_id: str, quote: Quote, at: datetime) -> Ride:
        """A new ride from a quote, with its ``RideRequested`` event."""
        ride = cls(
            ride_id=ride_id,
            rider_id=quote.rider_id,
            pickup=quote.pickup,
            dropoff=quote.dropoff,
            quoted_fare=quote.fare,
            quoted_distance_m=quote.distance_m,
            quoted_duration_s=quote.trip_duration_s,
            requested_at=at,
            updated_at=at,
            pickup_eta_s=quote.pickup_eta_s,
        )
        ride.timeline.append(TimelineEntry(RideStatus.REQUESTED, at, None))
        ride.events.append(
            RideRequested(
                ride_id=ride_id,
                rider_id=quote.rider_id,
                pickup=quote.pickup,
                dropoff=quote.dropoff,
                quoted_fare=Money.of(quote.fare, CURRENCY),
                quoted_distance_meters=quote.distance_m,
                quoted_duration_seconds=quote.trip_duration_s,
                requested_at=at,
            )
        )
        return ride

    # --- transitions ---------------------------------------------------------------------------------
    @property
    def stalled(self) -> bool:
        """Is the car serving the ride the one reported stalled (no replacement has come yet)?"""
        return self.car_id is not None and self.stalled_car_id == self.car_id

    def _change(self, at: datetime, status: RideStatus | None = None, timeline: bool = True) -> None:
        self.version += 1
        self.updated_at = at
        if status is not None:
            self.status = status
        if timeline:
            self.timeline.append(TimelineEntry(self.status, at, self.car_id))

    def _knows(self, car_id: str) -> bool:
        """Was this car ever assigned to the ride (its CarAssigned already applied)?"""
        return car_id == self.car_id or any(t.car_id == car_id for t in self.timeline)

    def _too_early(self, car_id: str, before: frozenset[RideStatus]) -> Outcome:
        """An event of a step the ride has not reached yet (or of a car it has not heard of) waits."""
        if self.status in before or (self.status in ACTIVE and not self._knows(car_id)):
            return Outcome.EARLY
        return Outcome.STALE

    def assign_car(
        self, car_id: str, pickup_eta_s: float, at: datetime, sequence: int | None = None
    ) -> Outcome:
        """``CarAssigned``: the first car, or a replacement after a stall. Its ``sequence`` (the fleet's
        dispatch count for this ride) orders it: not newer than the applied one is stale, past the next one
        waits for the one between. Without a sequence (recorded before it was sequenced) a car the ride
        already had is a duplicate. A ride that ended takes no car (the dispatcher frees it)."""
        match order(self.car_sequence, sequence):
            case Order.STALE:
                return Outcome.STALE
            case Order.EARLY:
                return Outcome.EARLY
        replacement = self.status in (RideStatus.CAR_ASSIGNED, RideStatus.CAR_ARRIVED, RideStatus.IN_PROGRESS)
        duplicate = sequence is None and self._knows(car_id)
        if not (self.status == RideStatus.REQUESTED or (replacement and not duplicate)):
            return Outcome.STALE
        self.car_sequence = sequence
        self.car_id = car_id
        self.pickup_eta_s = pickup_eta_s
        self._change(
            at, RideStatus.IN_PROGRESS if self.status == RideStatus.IN_PROGRESS else RideStatus.CAR_ASSIGNED
        )
        return Outcome.APPLIED

    def cancellable_by(self, reason: CancellationReason) -> bool:
        """The system ends any active ride; a rider or an operator one before the trip, or one whose car
        stalled."""
        if self.status not in ACTIVE:
            return False
        return reason not in BY_PEOPLE or self.status in CANCELLABLE or self.stalled

    def cancel(self, reason: CancellationReason, at: datetime) -> None:
        """Cancel while cancellable; a rider cancelling after a healthy car arrived pays a fee."""
        if not self.cancellable_by(reason):
            raise NotCancellable(f"a ride in {self.status} can no longer be cancelled")
        late = (
            reason == CancellationReason.RIDER_CANCELLED
            and self.status == RideStatus.CAR_ARRIVED
            and not self.stalled
        )
        fee = Money.of(CANCELLATION_FEE, CURRENCY) if late else None
        self.cancellation = Cancellation(reason, fee, at)
        released_car = self.car_id
        self._change(at, RideStatus.CANCELLED)
        self.events.append(
            RideCancelled(
                ride_id=self.ride_id,
                rider_id=self.rider_id,
                car_id=released_car,
                reason=reason,
                fee=fee,
                cancelled_at=at,
            )
        )

    def expire(self, at: datetime) -> None:
        """The active state outlived its deadline: the system ends the ride with its own reason (no fee)."""
        reason = SYSTEM_END.get(self.status)
        if reason is None:
            raise NotCancellable(f"a ride in {self.status} has no deadline to miss")
        self.cancel(reason, at)

    def car_stalled(self, car_id: str) -> Outcome:
        """``CarStalled``: remember that the ride's car stalled (the ride may now be cancelled without a fee).
        Not a new version: the public ride does not change until a replacement comes or the ride ends."""
        if self.status not in ACTIVE:
            return Outcome.STALE
        if not self._knows(car_id):
            return Outcome.EARLY  # the stall of a car whose CarAssigned has not been applied yet
        if car_id != self.car_id or self.stalled:
            return Outcome.STALE  # an earlier car (already replaced), or a stall already recorded
        self.stalled_car_id = car_id
        return Outcome.APPLIED

    def car_arrived(self, car_id: str, at: datetime) -> Outcome:
        if self.status != RideStatus.CAR_ASSIGNED or car_id != self.car_id:
            return self._too_early(car_id, frozenset({RideStatus.REQUESTED}))
        self.pickup_eta_s = 0
        self._change(at, RideStatus.CAR_ARRIVED)
        return Outcome.APPLIED

    def trip_started(self, car_id: str, at: datetime) -> Outcome:
        if self.status != RideStatus.CAR_ARRIVED or car_id != self.car_id:
            return self._too_early(car_id, frozenset({RideStatus.REQUESTED, RideStatus.CAR_ASSIGNED}))
        self._change(at, RideStatus.IN_PROGRESS)
        return Outcome.APPLIED

    def complete(self, car_id: str, distance_m: float, duration_s: float, at: datetime) -> Outcome:
        """The trip ended: the final fare from what was measured, never above the quote."""
        if self.status != RideStatus.IN_PROGRESS or car_id != self.car_id:
            return self._too_early(car_id, BEFORE_TRIP)
        self.distance_m, self.duration_s = distance_m, duration_s
        self.fare = min(fare_for(distance_m, duration_s), self.quoted_fare)
        self.arrival_eta_s = 0
        self._change(at, RideStatus.COMPLETED)
        self.events.append(
            RideCompleted(
                ride_id=self.ride_id,
                rider_id=self.rider_id,
                car_id=car_id,
                fare=Money.of(self.fare),
                distance_meters=distance_m,
                duration_seconds=duration_s,
                completed_at=at,
            )
        )
        return Outcome.APPLIED

    def completion(self) -> RideCompleted | None:
        """The ``RideCompleted`` of a COMPLETED ride (to record again while no payment outcome came); None
        for a ride in any other state."""
        if self.status != RideStatus.COMPLETED or self.car_id is None or self.fare is None:
            return None
        completed_at = next(
            (t.at for t in reversed(self.timeline) if t.status == RideStatus.COMPLETED), self.updated_at
        )
        return RideCompleted(
            ride_id=self.ride_id,
            rider_id=self.rider_id,
            car_id=self.car_id,
            fare=Money.of(self.fare),
            distance_meters=self.distance_m or 0.0,
            duration_seconds=self.duration_s or 0.0,
            completed_at=completed_at,
        )

    def payment_settled(
        self, succeeded: bool, payment_id: str, amount: Money, at: datetime, sequence: int | None = None
    ) -> Outcome:
        """A payment outcome, in the payment's ``sequence``: one not newer than the recorded one is stale, one
        past the next is early (parked until the outcome between is applied).
        A fare moves the ride to PAID / PAYMENT_FAILED (a newer failure is recorded on a failed ride); a
        fee is only recorded."""
        status = PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.FAILED
        payment = Payment(status, payment_id, amount, sequence)
        if self.status in ACTIVE:
            return Outcome.EARLY  # the payment of a fare this ride has not computed yet
        place = payment.order_after(self.payment)
        if place != Order.APPLY:
            return Outcome.STALE if place == Order.STALE else Outcome.EARLY  # early: an outcome between
        fee_due = (
            self.status == RideStatus.CANCELLED
            and self.cancellation is not None
            and self.cancellation.fee is not None
        )
        if fee_due and self.payment != payment:
            self.payment = payment
            self._change(at, timeline=False)
            return Outcome.APPLIED
        if self.status == RideStatus.COMPLETED or (self.status == RideStatus.PAYMENT_FAILED and succeeded):
            self.payment = payment
            self._change(at, RideStatus.PAID if succeeded else RideStatus.PAYMENT_FAILED)
            return Outcome.APPLIED
        if self.status == RideStatus.PAYMENT_FAILED and sequence is not None and self.payment != payment:
            self.payment = payment  # a later attempt failed too: its outcome is the one to show
            self._change(at, timeline=False)
            return Outcome.APPLIED
        return Outcome.STALE

    def points_recorded(self, points: int, at: datetime) -> Outcome:
        if self.status == RideStatus.PAID and self.points_earned is None:
            self.points_earned = points
            self._change(at, timeline=False)
            return Outcome.APPLIED
        if self.status in ACTIVE or self.status in (RideStatus.COMPLETED, RideStatus.PAYMENT_FAILED):
            return Outcome.EARLY
        return Outcome.STALE

    def pull_events(self) -> list[EventData]:
        """The events recorded since the last pull (each is published once, with the change that made it)."""
        events, self.events = self.events, []
        return events


@dataclass(frozen=True)
class Deadlines:
    """How long each non-terminal state may last, in wall seconds (simulated durations are divided by
    ``sim_speed``). ``due`` is the deadline a ride gets when it enters its current state at ``now``."""

    dispatch_timeout_s: float = 30
    sim_speed: float = 30
    boarding_s: float = 60
    grace_s: float = 120
    trip_factor: float = 2
    payment_s: float = 60
    assignment_wait_s: float = 600

    def due(self, ride: Ride, now: datetime) -> datetime | None:
        """REQUESTED: the dispatch timeout after the request. CAR_ASSIGNED: the pickup ETA; CAR_ARRIVED:
        boarding; IN_PROGRESS: the quoted trip times ``trip_factor`` (plus a replacement car's pickup ETA);
        each in wall time plus ``grace_s``. COMPLETED: ``payment_s``. Terminal states: none."""
        if ride.status == RideStatus.REQUESTED:
            return ride.requested_at + timedelta(seconds=self.dispatch_timeout_s)
        if ride.status == RideStatus.COMPLETED:
            return now + timedelta(seconds=self.payment_s)
        simulated_s = self._expected_simulated_s(ride)
        if simulated_s is None:
            return None
        return now + timedelta(seconds=simulated_s / self.sim_speed + self.grace_s)

    def _expected_simulated_s(self, ride: Ride) -> float | None:
        pickup_s = ride.pickup_eta_s or 0.0
        if ride.status == RideStatus.CAR_ASSIGNED:
            return pickup_s
        if ride.status == RideStatus.CAR_ARRIVED:
            return self.boarding_s
        if ride.status == RideStatus.IN_PROGRESS:
            return pickup_s + ride.quoted_duration_s * self.trip_factor
        return None

    def extended(self, ride: Ride, now: datetime) -> datetime | None:
        """A REQUESTED ride the fleet holds a car for waits one more dispatch timeout for its ``CarAssigned``,
        up to ``assignment_wait_s`` past the first timeout; None once that is spent."""
        limit = ride.requested_at + timedelta(seconds=self.dispatch_timeout_s + self.assignment_wait_s)
        if now >= limit:
            return None
        return min(now + timedelta(seconds=self.dispatch_timeout_s), limit)

    def resend_at(self, now: datetime) -> datetime:
        """When a COMPLETED ride still without a payment outcome records its ``RideCompleted`` again."""
        return now + timedelta(seconds=self.payment_s)

    @property
    def horizon_s(self) -> float:
        """The soonest a deadline set from now can fall due (how long a watchdog with nothing due may
        sleep)."""
        return min(self.dispatch_timeout_s, self.grace_s, self.payment_s)
