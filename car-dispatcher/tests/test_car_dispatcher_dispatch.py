"""The events consumer (the kernel's idempotent consumer over the handler table) against in-memory
adapters: one unit of work committed per message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from car_dispatcher_fakes import FleetStore, MemoryFleetUnitOfWork, StoreFleet, StraightRoads

from acr import catalog, clock
from acr.catalog.base import EventData, Place
from acr.catalog.monitoring import CarStalled, TripCompleted, TripStarted
from acr.catalog.ride import CancellationReason, RideCancelled, RideRequested
from acr.consumer import Stale, Wait, idempotent
from acr.envelope import CloudEvent
from acr.money import Money
from acr.unit_of_work import Duplicate, Outgoing
from acr_city import Bounds
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.domain import (
    AssignmentStatus,
    Car,
    CarNotFound,
    CarState,
    DispatchPaused,
    NoReplacementYet,
    NotOutOfService,
)
from car_dispatcher.handlers import DispatchControl, handlers, return_to_service
from car_dispatcher.ports import FleetView

PICKUP = Place(label="pickup", lat=60.170, lon=24.940)
DROPOFF = Place(label="dropoff", lat=60.180, lon=24.960)
AT = datetime(2026, 1, 1, tzinfo=UTC)
BOUNDS = Bounds(24.5, 60.0, 25.5, 60.5)


def _store(*cars: tuple[str, float, float]) -> FleetStore:
    store = FleetStore()
    for car_id, lat, lon in cars:
        store.cars[car_id] = Car(car_id, CarState.AVAILABLE, lat, lon)
    return store


class Consumer:
    """The events queue's consumer over ``store``, as the kernel runs it; counts the commits."""

    def __init__(
        self,
        store: FleetStore,
        before_commit: Callable[[], None] | None = None,
        fleet: FleetView | None = None,
    ) -> None:
        self.store = store
        self.control = DispatchControl()
        self.fleet = fleet or StoreFleet(store)
        self._before_commit = before_commit
        self._made: list[MemoryFleetUnitOfWork] = []
        table = handlers(roads=StraightRoads(), fleet=self.fleet, control=self.control, max_pickup_eta_s=900)
        self._handle = idempotent(self.unit_of_work, table)

    def unit_of_work(self) -> MemoryFleetUnitOfWork:
        uow = MemoryFleetUnitOfWork(self.store, self._before_commit)
        self._made.append(uow)
        return uow

    @property
    def commits(self) -> int:
        return sum(uow.commits for uow in self._made)

    def __call__(self, event: CloudEvent, data: EventData) -> int:
        """Consume one message; returns how many units of work it committed."""
        before = self.commits
        self._handle(event, data)
        return self.commits - before


def _event(data: EventData, sequence: int | None = None) -> tuple[CloudEvent, EventData]:
    return catalog.record(data, subject=getattr(data, "ride_id", None), sequence=sequence), data


def _requested(ride_id: str, sequence: int | None = None) -> tuple[CloudEvent, EventData]:
    return _event(
        RideRequested(
            ride_id=ride_id,
            rider_id="rdr",
            pickup=PICKUP,
            dropoff=DROPOFF,
            quoted_fare=Money.of(5),
            quoted_distance_meters=1,
            quoted_duration_seconds=1,
            requested_at=AT,
        ),
        sequence,
    )


def _cancelled(
    ride_id: str, car_id: str | None, reason: CancellationReason, sequence: int | None = None
) -> tuple[CloudEvent, EventData]:
    return _event(
        RideCancelled(ride_id=ride_id, rider_id="rdr", car_id=car_id, reason=reason, cancelled_at=AT),
        sequence,
    )


def _stalled(ride_id: str | None, car_id: str) -> tuple[CloudEvent, EventData]:
    return _event(CarStalled(ride_id=ride_id, car_id=car_id, lat=60.174, lon=24.95, at=AT))


def _started(ride_id: str, car_id: str) -> tuple[CloudEvent, EventData]:
    return _event(TripStarted(ride_id=ride_id, car_id=car_id, at=AT))


def _completed(ride_id: str, car_id: str) -> tuple[CloudEvent, EventData]:
    return _event(
        TripCompleted(ride_id=ride_id, car_id=car_id, distance_meters=100, duration_seconds=10, at=AT)
    )


def _saga(store: FleetStore) -> list[Outgoing]:
    """What the saga hears, without the car states recorded for the fleet view (tested on their own)."""
    return [o for o in store.outbox if not o.event.type.endswith(".FleetCarUpdated")]


def _types(store: FleetStore) -> list[str]:
    return [o.event.type.rsplit(".", 1)[1] for o in _saga(store)]


def test_the_nearest_available_car_is_reserved_and_announced() -> None:
    store = _store(("car-far", 60.20, 24.94), ("car-near", 60.171, 24.94))
    event, data = _requested("ride_1")
    consume = Consumer(store)
    assert consume(event, data) == 1
    assert store.cars["car-near"].state == CarState.RESERVED and store.cars["car-near"].ride_id == "ride_1"
    assert _types(store) == ["CarAssigned"] and _saga(store)[0].event.data["carId"] == "car-near"
    assert clock.parse(str(_saga(store)[0].event.data["assignedAt"])).tzinfo is not None
    with pytest.raises(Duplicate):
        consume(event.resent(), data)
    assert _types(store) == ["CarAssigned"] and len(store.markers) == 1


def test_two_rides_for_the_last_car_one_gets_it_the_other_hears_no_car() -> None:
    store = _store(("car-1", 60.171, 24.94))
    first, second = _requested("ride_1"), _requested("ride_2")
    sneaked = {"done": False}

    def another_dispatcher_wins() -> None:
        if not sneaked["done"]:
            sneaked["done"] = True
            Consumer(store)(*first)

    assert Consumer(store, another_dispatcher_wins)(*second) == 1  # the lost race is handled again
    assert store.cars["car-1"].ride_id == "ride_1"
    assert _types(store) == ["CarAssigned", "NoCarAvailable"]
    assert store.assignments["ride_2"].status == AssignmentStatus.NO_CAR
    assert len(store.markers) == 2


def test_a_car_taken_since_the_live_view_last_heard_is_skipped_for_the_next_one() -> None:
    store = _store(("car-near", 60.171, 24.94), ("car-next", 60.175, 24.94))
    fleet = LiveFleet(BOUNDS, list(store.cars.values()))  # both look available here
    store.cars["car-near"] = store.cars["car-near"].changed(CarState.RESERVED, "ride_0")
    assert Consumer(store, fleet=fleet)(*_requested("ride_1")) == 1
    assert store.cars["car-next"].ride_id == "ride_1" and store.cars["car-near"].ride_id == "ride_0"
    assert _saga(store)[0].event.data["carId"] == "car-next"


def test_the_live_fleet_hears_of_a_reservation_only_once_it_is_committed() -> None:
    store = _store(("car-1", 60.171, 24.94))
    fleet = LiveFleet(BOUNDS, list(store.cars.values()))
    seen_at_commit: list[list[str]] = []

    def look() -> None:
        seen_at_commit.append([c.car_id for c in fleet.nearest_available(60.17, 24.94, 5)])

    Consumer(store, look, fleet=fleet)(*_requested("ride_1"))
    assert seen_at_commit == [["car-1"]]
    assert fleet.nearest_available(60.17, 24.94, 5) == []
    assert fleet.all()[0].state == CarState.RESERVED and fleet.all()[0].version == 1


def test_paused_dispatch_leaves_the_request_waiting_for_later() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume.control.paused = True
    with pytest.raises(DispatchPaused) as paused:
        consume(*_requested("ride_1"))
    assert isinstance(paused.value, Wait)  # parked for as long as the pause lasts, never dead-lettered
    assert store.outbox == [] and store.markers == set() and consume.commits == 0


def test_a_cancel_releases_the_car_and_a_late_request_assigns_nothing() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    assert consume(*_cancelled("ride_1", "car-1", CancellationReason.DISPATCH_TIMEOUT)) == 1
    assert store.cars["car-1"].state == CarState.AVAILABLE
    assert _types(store) == ["CarAssigned", "CarReleased"]
    assert _saga(store)[-1].event.data["reason"] == "DISPATCH_TIMEOUT"

    assert consume(*_cancelled("ride_2", None, CancellationReason.RIDER_CANCELLED)) == 1
    assert consume(*_requested("ride_2")) == 1  # arrives after its cancel: a tombstone stops it
    assert _types(store) == ["CarAssigned", "CarReleased"] and store.cars["car-1"].state == CarState.AVAILABLE
    assert store.assignments["ride_2"].status == AssignmentStatus.CANCELLED


def test_a_cancel_not_newer_than_the_ride_version_applied_is_stale_and_a_gap_is_no_wait() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1", sequence=1))
    assert store.assignments["ride_1"].ride_sequence == 1
    with pytest.raises(Stale):  # a cancel stamped with a version the fleet already applied
        consume(*_cancelled("ride_1", "car-1", CancellationReason.RIDER_CANCELLED, sequence=1))
    assert store.cars["car-1"].state == CarState.RESERVED
    # versions 2-4 (car arrived, trip...) never reach the fleet: version 5 applies without waiting
    assert consume(*_cancelled("ride_1", "car-1", CancellationReason.CAR_NOT_ARRIVED, sequence=5)) == 1
    assert store.cars["car-1"].state == CarState.AVAILABLE and store.assignments["ride_1"].ride_sequence == 5
    with pytest.raises(Stale):  # another copy of the cancel (a second relay): dropped, not applied twice
        consume(*_cancelled("ride_1", "car-1", CancellationReason.CAR_NOT_ARRIVED, sequence=5))
    assert _types(store) == ["CarAssigned", "CarReleased"]

    consume(*_cancelled("ride_2", None, CancellationReason.RIDER_CANCELLED, sequence=2))  # the tombstone
    with pytest.raises(Stale):
        consume(*_cancelled("ride_2", None, CancellationReason.RIDER_CANCELLED, sequence=2))


@pytest.mark.parametrize("on_trip", [False, True])
@pytest.mark.parametrize("reason", list(CancellationReason))
def test_a_cancel_for_any_reason_before_or_during_the_trip_releases_the_car(
    reason: CancellationReason, on_trip: bool
) -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    if on_trip:
        consume(*_started("ride_1", "car-1"))
    assert consume(*_cancelled("ride_1", "car-1", reason)) == 1
    assert (store.cars["car-1"].state, store.cars["car-1"].ride_id) == (CarState.AVAILABLE, None)
    assert store.assignments["ride_1"].status == AssignmentStatus.CANCELLED
    assert _types(store)[-1] == "CarReleased" and _saga(store)[-1].event.data["reason"] == reason.value


def test_a_stall_that_waited_for_a_replacement_until_the_ride_ended_only_takes_the_car_out() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    consume(*_started("ride_1", "car-1"))
    stalled = _stalled("ride_1", "car-1")
    with pytest.raises(NoReplacementYet):
        consume(*stalled)
    consume(*_cancelled("ride_1", "car-1", CancellationReason.TRIP_INTERRUPTED))  # ride-manager's deadline
    assert consume(*stalled) == 1  # the parked stall comes again: nothing to replace any more
    assert (store.cars["car-1"].state, store.cars["car-1"].ride_id) == (CarState.OUT_OF_SERVICE, None)
    assert _types(store) == ["CarAssigned", "CarReleased", "CarOutOfService"]


def test_a_stall_about_a_ride_the_car_no_longer_serves_leaves_it_in_service() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    stalled = _stalled("ride_1", "car-1")
    with pytest.raises(NoReplacementYet):
        consume(*stalled)
    consume(*_cancelled("ride_1", "car-1", CancellationReason.CAR_NOT_ARRIVED))
    consume(*_requested("ride_2"))  # the released car drives again, for another ride
    assert consume(*stalled) == 1
    assert (store.cars["car-1"].state, store.cars["car-1"].ride_id) == (CarState.RESERVED, "ride_2")
    assert "CarOutOfService" not in _types(store)


def test_a_completed_trip_frees_the_car() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    assert consume(*_started("ride_1", "car-1")) == 1
    assert store.cars["car-1"].state == CarState.ON_TRIP and store.assignments["ride_1"].trip_started
    assert consume(*_completed("ride_1", "car-1")) == 1
    assert store.cars["car-1"].state == CarState.AVAILABLE and store.cars["car-1"].ride_id is None
    assert store.assignments["ride_1"].status == AssignmentStatus.COMPLETED


def test_a_stall_mid_trip_sends_another_car_to_where_the_car_stopped() -> None:
    store = _store(("car-1", 60.171, 24.94), ("car-2", 60.175, 24.95))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    consume(*_started("ride_1", "car-1"))
    assert consume(*_stalled("ride_1", "car-1")) == 1  # out of service and replaced: one unit of work
    assert store.cars["car-1"].state == CarState.OUT_OF_SERVICE
    assert store.cars["car-2"].ride_id == "ride_1"
    replacement = _saga(store)[-1].event.data
    assert (replacement["replacesCarId"], replacement["pickup"]["lat"]) == ("car-1", 60.174)
    assert _types(store) == ["CarAssigned", "CarOutOfService", "CarAssigned"]
    # the ride's dispatch count orders its cars: a late first assignment never overtakes the replacement
    assert [o.event.sequence for o in store.outbox if o.event.type.endswith("CarAssigned")] == [1, 2]
    assert return_to_service(consume.unit_of_work(), "car-1", fleet=consume.fleet).state == CarState.AVAILABLE
    assert store.cars["car-1"].state == CarState.AVAILABLE


def test_a_stall_before_pickup_sends_another_car_to_the_pickup() -> None:
    store = _store(("car-1", 60.171, 24.94), ("car-2", 60.175, 24.95))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    assert consume(*_stalled("ride_1", "car-1")) == 1
    replacement = _saga(store)[-1].event.data
    assert (replacement["carId"], replacement["pickup"]["label"]) == ("car-2", "pickup")
    assert store.assignments["ride_1"].car_id == "car-2"


def test_a_stall_with_no_replacement_yet_commits_nothing_and_succeeds_when_a_car_is_free() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    consume(*_requested("ride_1"))
    consume(*_started("ride_1", "car-1"))
    stalled = _stalled("ride_1", "car-1")
    with pytest.raises(NoReplacementYet) as waiting:
        consume(*stalled)
    assert isinstance(waiting.value, Wait)
    assert store.cars["car-1"].state == CarState.ON_TRIP and _types(store) == ["CarAssigned"]
    assert len(store.markers) == 2  # the stall's message is not consumed: it comes again

    store.cars["car-2"] = Car("car-2", CarState.AVAILABLE, 60.175, 24.95)
    assert consume(*stalled) == 1
    assert store.cars["car-1"].state == CarState.OUT_OF_SERVICE and store.cars["car-2"].ride_id == "ride_1"
    assert _types(store) == ["CarAssigned", "CarOutOfService", "CarAssigned"]


def test_a_stall_without_a_ride_only_takes_the_car_out_of_service_once() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    assert consume(*_stalled(None, "car-1")) == 1
    assert consume(*_stalled(None, "car-1")) == 1  # already out of service: the marker alone
    assert _types(store) == ["CarOutOfService"] and store.cars["car-1"].state == CarState.OUT_OF_SERVICE
    assert len(store.markers) == 2


def test_every_handler_commits_one_unit_of_work_per_message() -> None:
    store = _store(("car-1", 60.171, 24.94), ("car-2", 60.175, 24.95), ("car-3", 60.176, 24.95))
    consume = Consumer(store)
    messages = [
        _requested("ride_1"),
        _started("ride_1", "car-1"),
        _stalled("ride_1", "car-1"),
        _completed("ride_1", "car-2"),
        _requested("ride_2"),
        _cancelled("ride_2", "car-2", CancellationReason.RIDER_CANCELLED),
        _requested("ride_3"),  # car-1 out of service, car-2 free again
        _cancelled("ride_4", None, CancellationReason.RIDER_CANCELLED),
    ]
    assert [consume(*message) for message in messages] == [1] * len(messages)
    assert len(store.markers) == len(messages)
    assert store.assignments["ride_3"].car_id == "car-2"


def test_the_operator_returns_only_an_out_of_service_car() -> None:
    store = _store(("car-1", 60.171, 24.94))
    consume = Consumer(store)
    with pytest.raises(CarNotFound) as missing:
        return_to_service(consume.unit_of_work(), "nope", fleet=consume.fleet)
    assert (missing.value.status, missing.value.code) == (404, "car_not_found")
    with pytest.raises(NotOutOfService) as in_service:
        return_to_service(consume.unit_of_work(), "car-1", fleet=consume.fleet)
    assert (in_service.value.status, in_service.value.code) == (409, "not_out_of_service")
    assert consume.commits == 0
