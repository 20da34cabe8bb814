"""Use cases of the fleet context: the events consumer's handlers (dispatch, release, stall recovery),
the operator's return to service, the pickup-ETA query and a ride's assignment."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from acr import clock
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased, FleetCarUpdated, NoCarAvailable
from acr.catalog.monitoring import CarStalled, TripCompleted, TripStarted
from acr.catalog.ride import RideCancelled, RideRequested
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.ordering import drop_if_stale
from acr.unit_of_work import Conflict
from car_dispatcher.domain import (
    Assignment,
    AssignmentNotFound,
    AssignmentStatus,
    Candidate,
    Car,
    CarNotFound,
    CarState,
    DispatchPaused,
    NoCarInReach,
    NoReplacementYet,
    NotOutOfService,
    OutsideServiceArea,
    ranked,
)
from car_dispatcher.ports import FleetView, Roads, UnitOfWork

log = logging.getLogger(__name__)
CANDIDATES_TRIED = 5
NEAREST = 40


@dataclass
class DispatchControl:
    """Operator switches (``PUT /v1/ops/dispatch``)."""

    paused: bool = False


# --- queries --------------------------------------------------------------------------------------------
def candidates(
    lat: float,
    lon: float,
    *,
    roads: Roads,
    fleet: FleetView,
    max_pickup_eta_s: float,
    exclude: str | None = None,
) -> list[Candidate]:
    """Nearby available cars ranked by road ETA (one bounded reverse search from the pickup)."""
    cars = [c for c in fleet.nearest_available(lat, lon, NEAREST) if c.car_id != exclude]
    return ranked(roads.etas_to(lat, lon, cars, max_pickup_eta_s), max_pickup_eta_s)


def pickup_eta(
    lat: float, lon: float, *, roads: Roads, fleet: FleetView, max_pickup_eta_s: float
) -> Candidate:
    """The available car that can reach this pickup first."""
    if not roads.contains(lat, lon):
        raise OutsideServiceArea("that place is outside the service area")
    best = candidates(lat, lon, roads=roads, fleet=fleet, max_pickup_eta_s=max_pickup_eta_s)
    if not best:
        raise NoCarInReach("no car can reach the pickup in time right now")
    return best[0]


def assignment_of(uow: UnitOfWork, ride_id: str) -> Assignment:
    """The fleet's row of a ride: which car it assigned and how far the ride got here."""
    row = uow.assignments.get(ride_id)
    if row is None:
        raise AssignmentNotFound(f"no assignment for ride {ride_id}")
    return row


# --- the operator ---------------------------------------------------------------------------------------
def return_to_service(uow: UnitOfWork, car_id: str, *, fleet: FleetView) -> Car:
    """An out-of-service car is available again (committed here: no message is consumed)."""
    car = uow.cars.get(car_id)
    if car is None:
        raise CarNotFound(f"no car {car_id}")
    if car.state != CarState.OUT_OF_SERVICE:
        raise NotOutOfService(f"car {car_id} is in service")
    back = _change(uow, fleet, car, CarState.AVAILABLE, None)
    uow.commit()
    return back


# --- the seeded fleet -----------------------------------------------------------------------------------
def add_cars(uow_factory: Callable[[], UnitOfWork], cars: list[Car]) -> int:
    """Each car joins the table with the event that puts it in the fleet view, in a transaction of its own;
    one another replica added first is skipped. Returns how many were added."""
    added = 0
    for car in cars:
        uow = uow_factory()
        uow.cars.add(car)
        _announce(uow, car, (car.lat, car.lon))
        try:
            uow.commit()
        except Conflict:
            continue
        added += 1
    return added


# --- the events queue -----------------------------------------------------------------------------------
def on_ride_requested(
    uow: UnitOfWork,
    data: RideRequested,
    event: CloudEvent,
    *,
    roads: Roads,
    fleet: FleetView,
    control: DispatchControl,
    max_pickup_eta_s: float,
) -> None:
    """Reserve the nearest available car (never two rides on one car) or say there is none."""
    if control.paused:
        raise DispatchPaused("dispatch is paused")
    if uow.assignments.get(data.ride_id) is not None:
        return  # cancelled before we got to it
    fresh = Assignment(
        data.ride_id,
        AssignmentStatus.ASSIGNED,
        pickup=data.pickup,
        dropoff=data.dropoff,
        ride_sequence=event.sequence or 0,
    )
    ranked_cars = candidates(
        data.pickup.lat, data.pickup.lon, roads=roads, fleet=fleet, max_pickup_eta_s=max_pickup_eta_s
    )
    if _reserve_first_available(uow, fleet, fresh, None, data.pickup, ranked_cars):
        return
    uow.assignments.add(replace(fresh, status=AssignmentStatus.NO_CAR))
    reason = "no available car can reach the pickup in time"
    uow.record(NoCarAvailable(ride_id=data.ride_id, reason=reason), subject=data.ride_id)


def on_ride_cancelled(uow: UnitOfWork, data: RideCancelled, event: CloudEvent, *, fleet: FleetView) -> None:
    """Release the ride's car, or leave a tombstone so a late request assigns nothing. Order is the ride's
    ``sequence`` against the ride version applied here; the fleet hears only some of a ride's versions (its
    request, its end), so a gap is no reason to wait (``gapless=False``)."""
    row = uow.assignments.get(data.ride_id)
    if row is None:
        tombstone = Assignment(data.ride_id, AssignmentStatus.CANCELLED, ride_sequence=event.sequence or 0)
        uow.assignments.add(tombstone)
        return
    drop_if_stale(row.ride_sequence, event.sequence, f"ride {data.ride_id}")
    if row.status != AssignmentStatus.ASSIGNED:
        return  # no car to release: it found none, or its trip ended
    uow.assignments.save(row.ended(AssignmentStatus.CANCELLED, event.sequence), row.version)
    car = uow.cars.get(row.car_id) if row.car_id else None
    if car is not None and car.serves(row.ride_id):
        _change(uow, fleet, car, CarState.AVAILABLE, None)
        released = CarReleased(ride_id=row.ride_id, car_id=car.car_id, reason=data.reason.value)
        uow.record(released, subject=row.ride_id)


def on_trip_started(uow: UnitOfWork, data: TripStarted, _event: CloudEvent, *, fleet: FleetView) -> None:
    row = uow.assignments.get(data.ride_id)
    if row is None or not row.waits_for(data.car_id):
        return
    uow.assignments.save(row.started(), row.version)
    car = uow.cars.get(data.car_id)
    if car is not None and car.serves(data.ride_id):
        _change(uow, fleet, car, CarState.ON_TRIP, data.ride_id)


def on_trip_completed(uow: UnitOfWork, data: TripCompleted, _event: CloudEvent, *, fleet: FleetView) -> None:
    """The car is available again where it dropped the rider off."""
    row = uow.assignments.get(data.ride_id)
    if row is not None and row.status == AssignmentStatus.ASSIGNED:
        uow.assignments.save(row.ended(AssignmentStatus.COMPLETED), row.version)
    car = uow.cars.get(data.car_id)
    if car is not None and car.serves(data.ride_id):
        _change(uow, fleet, car, CarState.AVAILABLE, None)


def on_car_stalled(
    uow: UnitOfWork,
    data: CarStalled,
    _event: CloudEvent,
    *,
    roads: Roads,
    fleet: FleetView,
    max_pickup_eta_s: float,
) -> None:
    """Take the car out of service and, if a ride counted on it, send another in the same unit of work:
    mid-trip the new car picks the rider up where the stalled one stopped. With no car free, the whole
    message waits (``NoReplacementYet``) until one is, or the ride ends. A stall about a ride the car no
    longer serves (it was released and sent to another ride since) leaves the car in service."""
    car = uow.cars.get(data.car_id)
    if car is not None and car.state != CarState.OUT_OF_SERVICE and not _serves_another(car, data.ride_id):
        _change(uow, fleet, car, CarState.OUT_OF_SERVICE, car.ride_id)
        uow.record(CarOutOfService(car_id=data.car_id, reason="stalled"), subject=data.car_id)
    row = uow.assignments.get(data.ride_id) if data.ride_id else None
    if row is None or not row.waits_for(data.car_id):
        return
    pickup = row.pickup
    if row.trip_started or pickup is None:
        pickup = Place(label=f"where car {data.car_id} stopped", lat=data.lat, lon=data.lon)
    ranked_cars = candidates(
        pickup.lat,
        pickup.lon,
        roads=roads,
        fleet=fleet,
        max_pickup_eta_s=max_pickup_eta_s,
        exclude=data.car_id,
    )
    if not _reserve_first_available(uow, fleet, row, row.version, pickup, ranked_cars, replaces=data.car_id):
        raise NoReplacementYet(f"no car can replace {data.car_id} for ride {row.ride_id} yet")


def handlers(
    *, roads: Roads, fleet: FleetView, control: DispatchControl, max_pickup_eta_s: float
) -> Handlers[UnitOfWork]:
    """The events queue's handler table."""
    return (
        Handlers[UnitOfWork]()
        .on(
            RideRequested,
            on_ride_requested,
            roads=roads,
            fleet=fleet,
            control=control,
            max_pickup_eta_s=max_pickup_eta_s,
        )
        .on(RideCancelled, on_ride_cancelled, fleet=fleet)
        .on(TripStarted, on_trip_started, fleet=fleet)
        .on(TripCompleted, on_trip_completed, fleet=fleet)
        .on(CarStalled, on_car_stalled, roads=roads, fleet=fleet, max_pickup_eta_s=max_pickup_eta_s)
    )


# --- helpers --------------------------------------------------------------------------------------------
def _serves_another(car: Car, ride_id: str | None) -> bool:
    """Does the car hold a ride other than ``ride_id`` (the ride a stall report names)?"""
    return ride_id is not None and car.ride_id is not None and car.ride_id != ride_id


def _change(uow: UnitOfWork, fleet: FleetView, car: Car, state: CarState, ride_id: str | None) -> Car:
    """Stage the car's change; the live fleet hears of it once it is committed."""
    uow.cars.change(car, state, ride_id)
    changed = car.changed(state, ride_id)
    _announce(uow, changed, fleet.position(car.car_id) or (car.lat, car.lon))
    uow.after_commit(partial(fleet.refresh, changed))
    return changed


def _announce(uow: UnitOfWork, car: Car, position: tuple[float, float]) -> None:
    """Record the car's whole dispatch state at its new version, for the fleet view (``projection``)."""
    updated = FleetCarUpdated(
        car_id=car.car_id,
        state=car.state.value,
        ride_id=car.ride_id,
        lat=position[0],
        lon=position[1],
        version=car.version,
    )
    uow.record(updated, subject=car.car_id, sequence=car.version)


def _reserve_first_available(
    uow: UnitOfWork,
    fleet: FleetView,
    row: Assignment,
    expected: int | None,
    pickup: Place,
    ranked_cars: list[Candidate],
    replaces: str | None = None,
) -> bool:
    """Stage the first of the nearest candidates that is AVAILABLE as read now for the ride (False when
    none is). If another ride takes that car before the commit (on this replica or another), the commit
    fails (``Conflict``) and the kernel runs the handler again, which reads the car as taken, refreshes
    the view with it and goes on to the next one."""
    for candidate in ranked_cars[:CANDIDATES_TRIED]:
        car = uow.cars.get(candidate.car_id)
        if car is None or car.state != CarState.AVAILABLE:
            log.info("car %s is no longer available; trying the next one", candidate.car_id)
            if car is not None:
                fleet.refresh(car)  # taken by another ride, maybe on another replica: the view learns it
            continue
        _reserve(uow, fleet, row, expected, car, candidate, pickup, replaces)
        return True
    return False


def _reserve(
    uow: UnitOfWork,
    fleet: FleetView,
    row: Assignment,
    expected: int | None,
    car: Car,
    candidate: Candidate,
    pickup: Place,
    replaces: str | None,
) -> None:
    position = fleet.position(car.car_id) or (car.lat, car.lon)
    uow.cars.reserve(car, row.ride_id)
    reserved = car.changed(CarState.RESERVED, row.ride_id)
    _announce(uow, reserved, position)
    uow.after_commit(partial(fleet.refresh, reserved))
    assigned = row.assigned(car.car_id)
    if expected is None:
        uow.assignments.add(assigned)
    else:
        uow.assignments.save(assigned, expected)
    assert row.dropoff is not None
    announced = CarAssigned(
        ride_id=row.ride_id,
        car_id=car.car_id,
        car_lat=position[0],
        car_lon=position[1],
        pickup=pickup,
        dropoff=row.dropoff,
        pickup_eta_seconds=round(candidate.eta_s, 1),
        assigned_at=clock.now(),
        replaces_car_id=replaces,
    )
    # the sequence is the ride's dispatch count: consumers tell a late first car from its replacement
    uow.record(announced, subject=row.ride_id, sequence=assigned.cars_assigned)
