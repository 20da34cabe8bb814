"""Every ride ends: each active state's durable deadline, the watchdog that acts on it (against what the
fleet did), stalled cars the rider or an operator may give up on, and payment outcomes in sequence. A fake
clock drives time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from ride_manager_fakes import MemoryRideHistory, MemoryRideUnitOfWork, RideStore, StaticDispatch, StaticGeo

from acr import catalog, clock
from acr.catalog.base import EventData, Place
from acr.catalog.fleet import CarAssigned
from acr.catalog.monitoring import CarArrivedAtPickup, CarStalled, TripCompleted, TripStarted
from acr.catalog.payment import PaymentFailed, PaymentPurpose, PaymentSucceeded
from acr.catalog.ride import CancellationReason, RideCancelled, RideCompleted
from acr.consumer import Park, Stale, idempotent
from acr.money import Money
from ride_manager import domain, handlers
from ride_manager.commands import CancelRide, PlaceRef, RequestQuote, RequestRide
from ride_manager.domain import Deadlines, PaymentStatus, Ride, RideStatus
from ride_manager.handlers import Nudge
from ride_manager.timers import Watchdog

MAX_ACTIVE = 3  # ACR_MAX_ACTIVE_RIDES' default

A = Place(label="1 Harbour Street, 00100", lat=60.16, lon=24.93, address_id="A1")
B = Place(label="9 Station Road, 00130", lat=60.18, lon=24.96, address_id="A2")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RULES = Deadlines(
    dispatch_timeout_s=30,
    sim_speed=10,
    boarding_s=60,
    grace_s=20,
    trip_factor=2,
    payment_s=40,
    assignment_wait_s=90,
)


class FakeClock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class World:
    """One ride context in memory: its store, the fleet it asks, the consumer of its events queue and its
    watchdog."""

    time: FakeClock
    store: RideStore = field(default_factory=RideStore)
    dispatch: StaticDispatch = field(default_factory=StaticDispatch)

    def uow(self) -> MemoryRideUnitOfWork:
        return MemoryRideUnitOfWork(self.store)

    def book(self, rider: str = "rdr_1") -> str:
        quote = handlers.request_quote(
            RequestQuote(rider, PlaceRef("A1"), PlaceRef("A2")),
            geo=StaticGeo({"A1": A, "A2": B}),
            dispatch=self.dispatch,
            uow=self.uow(),
            ttl_s=300,
        )
        ride = handlers.request_ride(
            RequestRide(rider, quote.quote_id, f"k-{len(self.store.rides)}", "h"),
            uow_factory=self.uow,
            key_ttl_s=86_400,
            max_active=MAX_ACTIVE,
            rules=RULES,
        )
        return ride.ride_id

    def deliver(self, data: EventData, subject: str, sequence: int | None = None) -> None:
        event = catalog.record(data, subject=subject, sequence=sequence)
        idempotent(self.uow, handlers.handlers(rules=RULES))(event, data)

    def ride(self, ride_id: str) -> Ride:
        return self.store.rides[ride_id]

    def watchdog(self, settle_s: float = 0) -> Watchdog:
        return Watchdog(
            history=MemoryRideHistory(self.store),
            uow_factory=self.uow,
            rules=RULES,
            dispatch=self.dispatch,
            settle_s=settle_s,
        )

    def published(self, kind: type[EventData]) -> list[EventData]:
        return [p for p in self.store.published() if isinstance(p, kind)]

    # --- the saga's steps, as the other contexts report them -------------------------------------------
    def assign(self, ride_id: str, car_id: str = "car-1", eta_s: float = 80) -> None:
        self.deliver(
            CarAssigned(
                ride_id=ride_id,
                car_id=car_id,
                car_lat=60.1,
                car_lon=24.9,
                pickup=A,
                dropoff=B,
                pickup_eta_seconds=eta_s,
                assigned_at=clock.now(),
            ),
            ride_id,
        )

    def arrive(self, ride_id: str, car_id: str = "car-1") -> None:
        self.deliver(CarArrivedAtPickup(ride_id=ride_id, car_id=car_id, at=clock.now()), ride_id)

    def start(self, ride_id: str, car_id: str = "car-1") -> None:
        self.deliver(TripStarted(ride_id=ride_id, car_id=car_id, at=clock.now()), ride_id)

    def complete(self, ride_id: str, car_id: str = "car-1") -> None:
        data = TripCompleted(
            ride_id=ride_id, car_id=car_id, distance_meters=900, duration_seconds=120, at=clock.now()
        )
        self.deliver(data, ride_id)

    def stall(self, ride_id: str | None, car_id: str = "car-1") -> None:
        self.deliver(CarStalled(ride_id=ride_id, car_id=car_id, lat=60.17, lon=24.95, at=clock.now()), car_id)

    def paid(self, ride_id: str, sequence: int, ok: bool = True, purpose: str = "FARE") -> None:
        common = {
            "ride_id": ride_id,
            "rider_id": "rdr_1",
            "payment_id": f"pay_{sequence}",
            "amount": Money.of("5.00"),
            "purpose": PaymentPurpose(purpose),
        }
        data: EventData = PaymentSucceeded(**common) if ok else PaymentFailed(**common, reason="declined")
        self.deliver(data, ride_id, sequence)

    def to(self, ride_id: str, status: RideStatus) -> None:
        """Drive the ride up to ``status`` (each step 1 s after the last)."""
        steps = [self.assign, self.arrive, self.start, self.complete]
        order = [
            RideStatus.CAR_ASSIGNED,
            RideStatus.CAR_ARRIVED,
            RideStatus.IN_PROGRESS,
            RideStatus.COMPLETED,
        ]
        for step, reached in zip(steps, order, strict=True):
            if self.ride(ride_id).status == status:
                return
            self.time.advance(1)
            step(ride_id)
            assert self.ride(ride_id).status == reached


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    time = FakeClock()
    monkeypatch.setattr(clock, "now", time.now)
    return World(time)


def _seconds(at: datetime | None) -> float | None:
    return None if at is None else (at - T0).total_seconds()


# --- each state's deadline -----------------------------------------------------------------------------
def test_each_active_state_gets_its_deadline_when_it_enters_it_and_a_final_state_none(world: World) -> None:
    ride_id = world.book()
    assert _seconds(world.ride(ride_id).deadline) == 30  # the dispatch timeout
    world.time.advance(5)
    world.assign(ride_id, eta_s=80)
    assert _seconds(world.ride(ride_id).deadline) == 5 + 80 / 10 + 20  # the pickup ETA in wall time + grace
    world.time.advance(3)
    world.arrive(ride_id)
    assert _seconds(world.ride(ride_id).deadline) == 8 + 60 / 10 + 20  # boarding + grace
    world.time.advance(2)
    world.start(ride_id)
    quoted_s = world.ride(ride_id).quoted_duration_s
    assert _seconds(world.ride(ride_id).deadline) == pytest.approx(10 + quoted_s * 2 / 10 + 20)
    world.time.advance(7)
    world.complete(ride_id)
    assert _seconds(world.ride(ride_id).deadline) == 17 + 40  # the payment's
    assert MemoryRideHistory(world.store).deadlines(10) == [(ride_id, T0 + timedelta(seconds=57))]
    world.paid(ride_id, sequence=1)
    assert world.ride(ride_id).status == RideStatus.PAID and world.ride(ride_id).deadline is None
    assert MemoryRideHistory(world.store).deadlines(10) == []


def test_a_replacement_car_mid_trip_gets_its_pickup_and_the_whole_trip_again(world: World) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.IN_PROGRESS)
    world.time.advance(30)
    world.assign(ride_id, car_id="car-2", eta_s=50)
    quoted_s = world.ride(ride_id).quoted_duration_s
    assert world.ride(ride_id).status == RideStatus.IN_PROGRESS
    assert _seconds(world.ride(ride_id).deadline) == pytest.approx(33 + (50 + quoted_s * 2) / 10 + 20)


def test_the_wait_for_an_assigned_car_is_bounded_and_the_horizon_is_the_soonest_new_deadline() -> None:
    ride = Ride.request(
        "r", domain.Quote("q", "rdr", A, B, 60, 600, 5000, domain.fare_for(5000, 600), T0), T0
    )
    assert RULES.extended(ride, T0 + timedelta(seconds=30)) == T0 + timedelta(seconds=60)
    assert RULES.extended(ride, T0 + timedelta(seconds=100)) == T0 + timedelta(seconds=120)  # capped
    assert RULES.extended(ride, T0 + timedelta(seconds=120)) is None
    assert RULES.horizon_s == 20


# --- the watchdog ends what the system cannot finish ---------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "reason"),
    [
        (RideStatus.REQUESTED, CancellationReason.DISPATCH_TIMEOUT),
        (RideStatus.CAR_ASSIGNED, CancellationReason.CAR_NOT_ARRIVED),
        (RideStatus.CAR_ARRIVED, CancellationReason.TRIP_NOT_STARTED),
        (RideStatus.IN_PROGRESS, CancellationReason.TRIP_INTERRUPTED),
    ],
)
def test_the_watchdog_ends_a_ride_stuck_in_each_state_with_its_own_reason_and_no_fee(
    world: World, stage: RideStatus, reason: CancellationReason
) -> None:
    ride_id = world.book()
    world.to(ride_id, stage)
    deadline = world.ride(ride_id).deadline
    assert deadline is not None
    world.time.at = deadline - timedelta(seconds=1)
    world.watchdog().tick()
    assert world.ride(ride_id).status == stage  # not yet

    world.time.at = deadline
    world.watchdog().tick()
    ended = world.ride(ride_id)
    assert ended.status == RideStatus.CANCELLED and ended.cancellation is not None
    assert (ended.cancellation.reason, ended.cancellation.fee, ended.deadline) == (reason, None, None)
    (cancelled,) = world.published(RideCancelled)
    assert isinstance(cancelled, RideCancelled)
    # the dispatcher frees the ride's car on this event
    expected_car = None if stage == RideStatus.REQUESTED else "car-1"
    assert (cancelled.reason, cancelled.car_id, cancelled.fee) == (reason, expected_car, None)
    assert MemoryRideHistory(world.store).deadlines(10) == []


def test_a_requested_ride_whose_car_the_fleet_assigned_waits_for_its_car_assigned(world: World) -> None:
    ride_id = world.book()
    world.dispatch.assignments[ride_id] = "car-7"  # ride-manager was away: the CarAssigned waits in the queue
    world.time.advance(30)
    world.watchdog().tick()
    waiting = world.ride(ride_id)
    assert (waiting.status, waiting.version, _seconds(waiting.deadline)) == (RideStatus.REQUESTED, 1, 60)
    assert world.dispatch.asked == [ride_id] and world.published(RideCancelled) == []
    world.assign(ride_id, car_id="car-7")
    assert world.ride(ride_id).status == RideStatus.CAR_ASSIGNED


def test_a_fleet_that_does_not_answer_is_no_reason_to_cancel_but_the_wait_is_bounded(world: World) -> None:
    ride_id = world.book()
    other = world.book()
    world.dispatch.down = True
    for moment in (30, 60, 90):
        world.time.at = T0 + timedelta(seconds=moment)
        world.watchdog().tick()
        assert world.ride(ride_id).status == world.ride(other).status == RideStatus.REQUESTED
    assert len(world.dispatch.asked) == 3  # once a tick: a fleet that did not answer is not asked again
    world.time.at = T0 + timedelta(seconds=120)  # the dispatch timeout and the whole assignment wait
    world.watchdog().tick()
    for each in (ride_id, other):
        cancellation = world.ride(each).cancellation
        assert cancellation is not None and cancellation.reason == CancellationReason.DISPATCH_TIMEOUT


def test_a_completed_ride_without_a_payment_outcome_asks_payment_again_without_a_new_version(
    world: World,
) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.COMPLETED)
    version, deadline = world.ride(ride_id).version, world.ride(ride_id).deadline
    assert deadline is not None
    world.time.at = deadline
    world.watchdog().tick()
    again = world.ride(ride_id)
    assert (again.status, again.version) == (RideStatus.COMPLETED, version)
    assert again.deadline == deadline + timedelta(seconds=40)
    first, second = world.published(RideCompleted)
    assert first == second  # the same completion: payment, idempotent by ride id, charges it once
    sequences = [o.event.sequence for o in world.store.outbox if o.event.type.endswith("RideCompleted")]
    assert sequences == [version, version]
    world.paid(ride_id, sequence=1)
    assert world.ride(ride_id).status == RideStatus.PAID and world.ride(ride_id).deadline is None


def test_a_ride_that_moves_on_while_the_watchdog_decides_is_left_as_it_is(world: World) -> None:
    ride_id = world.book()
    world.time.advance(30)

    def the_car_comes_first() -> MemoryRideUnitOfWork:
        return MemoryRideUnitOfWork(
            world.store, lambda: world.assign(ride_id) if world.ride(ride_id).version == 1 else None
        )

    nudge = handlers.on_deadline(
        ride_id, uow_factory=the_car_comes_first, rules=RULES, dispatch=world.dispatch
    )
    assert nudge == Nudge.NOT_DUE
    assert world.ride(ride_id).status == RideStatus.CAR_ASSIGNED and world.published(RideCancelled) == []


def test_the_watchdog_sleeps_until_the_next_deadline_but_never_past_the_horizon(world: World) -> None:
    soon, late = world.book(), world.book()
    world.assign(late, eta_s=2000)  # due in 2000 / 10 + 20 s
    world.ride(soon).deadline = T0 + timedelta(seconds=5)
    assert world.watchdog().tick() == 5
    world.ride(soon).deadline = None
    assert world.watchdog().tick() == RULES.horizon_s  # a ride booked meanwhile can be due that soon


def test_the_watchdog_settles_before_it_acts_after_a_start_or_a_failure(world: World) -> None:
    ride_id = world.book()
    world.time.advance(30)
    watchdog = world.watchdog(settle_s=10)
    watchdog.settle()
    assert watchdog.tick() == 10  # queued events apply first
    assert world.ride(ride_id).status == RideStatus.REQUESTED
    world.time.advance(10)
    watchdog.tick()
    assert world.ride(ride_id).status == RideStatus.CANCELLED


# --- a stalled car ---------------------------------------------------------------------------------------
def test_a_stall_is_recorded_without_a_new_version_and_the_rider_may_then_cancel_mid_trip_for_free(
    world: World,
) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.IN_PROGRESS)
    with pytest.raises(domain.NotCancellable):
        handlers.cancel_ride(CancelRide("rdr_1", ride_id), uow_factory=world.uow, rules=RULES)
    version, deadline = world.ride(ride_id).version, world.ride(ride_id).deadline
    world.stall(ride_id)
    stalled = world.ride(ride_id)
    assert stalled.stalled and (stalled.version, stalled.deadline) == (version, deadline)
    assert len(world.store.versions) == version  # no snapshot for the rider: nothing public changed
    cancelled = handlers.cancel_ride(CancelRide("rdr_1", ride_id), uow_factory=world.uow, rules=RULES)
    assert cancelled.cancellation is not None
    assert (cancelled.cancellation.reason, cancelled.cancellation.fee) == (
        CancellationReason.RIDER_CANCELLED,
        None,
    )
    (event,) = world.published(RideCancelled)
    assert isinstance(event, RideCancelled) and event.car_id == "car-1"


def test_an_operator_cancels_a_stalled_trip_but_not_a_healthy_one(world: World) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.IN_PROGRESS)
    with pytest.raises(domain.NotCancellable):
        handlers.cancel_by_operator(ride_id, uow_factory=world.uow, rules=RULES)
    with pytest.raises(domain.RideNotFound):
        handlers.cancel_by_operator("ride_unknown", uow_factory=world.uow, rules=RULES)
    world.stall(ride_id)
    cancelled = handlers.cancel_by_operator(ride_id, uow_factory=world.uow, rules=RULES)
    assert cancelled.cancellation is not None
    assert (cancelled.cancellation.reason, cancelled.cancellation.fee) == (
        CancellationReason.OPERATOR_CANCELLED,
        None,
    )
    again = handlers.cancel_by_operator(ride_id, uow_factory=world.uow, rules=RULES)
    assert again.version == cancelled.version  # idempotent


def test_a_replacement_car_ends_the_stall_and_the_old_cars_stall_is_stale(world: World) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.IN_PROGRESS)
    world.stall(ride_id, "car-1")
    world.assign(ride_id, car_id="car-2")
    assert not world.ride(ride_id).stalled
    with pytest.raises(domain.NotCancellable):
        handlers.cancel_ride(CancelRide("rdr_1", ride_id), uow_factory=world.uow, rules=RULES)
    with pytest.raises(Stale):
        world.stall(ride_id, "car-1")


def test_a_stall_before_its_car_is_known_waits_and_a_stall_at_the_pickup_waives_the_fee(world: World) -> None:
    ride_id = world.book()
    with pytest.raises(Park):
        world.stall(ride_id, "car-1")
    world.to(ride_id, RideStatus.CAR_ARRIVED)
    world.stall(ride_id, "car-1")
    cancelled = handlers.cancel_ride(CancelRide("rdr_1", ride_id), uow_factory=world.uow, rules=RULES)
    assert cancelled.cancellation is not None and cancelled.cancellation.fee is None
    world.stall(None, "car-3")  # an idle car's stall: nothing for a ride
    with pytest.raises(Stale):
        world.stall(ride_id, "car-1")  # the ride ended


# --- payment outcomes in their sequence ------------------------------------------------------------------
def test_payment_outcomes_delivered_out_of_order_apply_in_sequence_order(world: World) -> None:
    """The success (2) overtakes the decline (1): it is parked until the decline is applied, then applies;
    the decline sent again after it is stale. A late failure never overwrites a newer success."""
    ride_id = world.book()
    world.to(ride_id, RideStatus.CAR_ARRIVED)
    handlers.cancel_ride(CancelRide("rdr_1", ride_id), uow_factory=world.uow, rules=RULES)  # a fee is due
    version = world.ride(ride_id).version
    with pytest.raises(Park):
        world.paid(ride_id, sequence=2, purpose="CANCELLATION_FEE")
    assert world.ride(ride_id).payment is None and world.ride(ride_id).version == version
    world.paid(ride_id, sequence=1, ok=False, purpose="CANCELLATION_FEE")
    world.paid(ride_id, sequence=2, purpose="CANCELLATION_FEE")  # the parked one, tried again
    with pytest.raises(Stale):
        world.paid(ride_id, sequence=1, ok=False, purpose="CANCELLATION_FEE")
    payment = world.ride(ride_id).payment
    assert payment is not None and (payment.status, payment.sequence) == (PaymentStatus.SUCCEEDED, 2)
    assert world.ride(ride_id).version == version + 2


def test_a_fare_outcome_past_the_next_waits_for_the_one_between(world: World) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.COMPLETED)
    with pytest.raises(Park):
        world.paid(ride_id, sequence=3)  # 1 and 2 are still on their way
    world.paid(ride_id, sequence=1, ok=False)
    with pytest.raises(Park):
        world.paid(ride_id, sequence=3)
    world.paid(ride_id, sequence=2, ok=False)
    world.paid(ride_id, sequence=3)
    assert world.ride(ride_id).status == RideStatus.PAID


def test_fare_outcomes_apply_in_sequence_and_a_newer_failure_is_recorded(world: World) -> None:
    ride_id = world.book()
    world.to(ride_id, RideStatus.COMPLETED)
    world.paid(ride_id, sequence=1, ok=False)
    assert world.ride(ride_id).status == RideStatus.PAYMENT_FAILED
    with pytest.raises(Stale):
        world.paid(ride_id, sequence=1, ok=False)  # the same outcome, sent again
    version = world.ride(ride_id).version
    world.paid(ride_id, sequence=2, ok=False)  # an operator retry that failed too
    failed = world.ride(ride_id)
    assert (failed.status, failed.version, failed.payment and failed.payment.payment_id) == (
        RideStatus.PAYMENT_FAILED,
        version + 1,
        "pay_2",
    )
    world.paid(ride_id, sequence=3)
    with pytest.raises(Stale):
        world.paid(ride_id, sequence=2, ok=False)
    assert world.ride(ride_id).status == RideStatus.PAID
