"""Use cases of the fleet context: dispatch, release, stall recovery, return to service."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from acr import catalog
from acr.catalog.base import EventData, Place
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased, NoCarAvailable
from acr.catalog.monitoring import CarStalled, TripCompleted, TripStarted
from acr.catalog.ride import RideCancelled, RideRequested
from acr.envelope import CloudEvent
from acr.topology import bus_name
from acr.unit_of_work import Conflict, Destination, Outgoing
from car_dispatcher.domain import (
    Assignment,
    AssignmentStatus,
    Candidate,
    Car,
    CarState,
    DispatchPaused,
    NoReplacementYet,
    ranked,
)
from car_dispatcher.ports import FleetView, Roads, UnitOfWork

log = logging.getLogger(__name__)
FLEET_BUS = Destination("bus", bus_name("fleet"))
MAX_ATTEMPTS = 5
NEAREST = 40


class CarNotFound(Exception):
    pass


class NotOutOfService(Exception):
    pass


@dataclass
class DispatchControl:
    """Operator switches (``PUT /ops/dispatch``)."""

    paused: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _publish(uow: UnitOfWork, data: EventData, subject: str) -> None:
    uow.record(Outgoing(catalog.record(data, subject=subject), FLEET_BUS))


@dataclass
class Dispatcher:
    uow: Callable[[], UnitOfWork]
    roads: Roads
    fleet: FleetView
    max_pickup_eta_s: float
    control: DispatchControl = field(default_factory=DispatchControl)

    # --- queries ---------------------------------------------------------------------------------------
    def candidates(self, lat: float, lon: float, exclude: str | None = None) -> list[Candidate]:
        """Nearby available cars ranked by road ETA (one bounded reverse search from the pickup)."""
        cars = [c for c in self.fleet.nearest_available(lat, lon, NEAREST) if c.car_id != exclude]
        return ranked(self.roads.etas_to(lat, lon, cars, self.max_pickup_eta_s), self.max_pickup_eta_s)

    def pickup_eta(self, lat: float, lon: float) -> Candidate | None:
        best = self.candidates(lat, lon)
        return best[0] if best else None

    # --- the queue ---------------------------------------------------------------------------------------
    def handle(self, event: CloudEvent, data: EventData) -> None:
        """Entry point for the fleet's queue."""
        handler = {
            RideRequested: self.on_ride_requested,
            RideCancelled: self.on_ride_cancelled,
            TripStarted: self.on_trip_started,
            TripCompleted: self.on_trip_completed,
            CarStalled: self.on_car_stalled,
        }[type(data)]
        handler(event, data)  # type: ignore[operator]

    def on_ride_requested(self, event: CloudEvent, data: RideRequested) -> None:
        """Reserve the nearest available car (never two rides on one car) or say there is none."""
        if self.control.paused:
            raise DispatchPaused("dispatch is paused")
        if self.uow().assignments.get(data.ride_id) is not None:
            self._consume_only(event)  # cancelled before we got to it
            return
        fresh = Assignment(data.ride_id, AssignmentStatus.ASSIGNED, pickup=data.pickup, dropoff=data.dropoff)
        for candidate in self.candidates(data.pickup.lat, data.pickup.lon)[:MAX_ATTEMPTS]:
            if self._try_assign(event, fresh, None, candidate, data.pickup):
                return
        uow = self.uow()
        uow.assignments.add(replace(fresh, status=AssignmentStatus.NO_CAR))
        _publish(
            uow,
            NoCarAvailable(ride_id=data.ride_id, reason="no available car can reach the pickup in time"),
            data.ride_id,
        )
        uow.mark_consumed(event)
        uow.commit()

    def _try_assign(
        self,
        event: CloudEvent,
        row: Assignment,
        expected: int | None,
        candidate: Candidate,
        pickup: Place,
        replaces: str | None = None,
    ) -> bool:
        """Reserve ``candidate`` for the ride in one commit; False when another ride took it first."""
        uow = self.uow()
        car = uow.cars.get(candidate.car_id)
        if car is None or car.state != CarState.AVAILABLE:
            return False
        position = self.fleet.position(car.car_id) or (car.lat, car.lon)
        uow.cars.reserve(car, row.ride_id)
        assigned = row.moved(car_id=car.car_id, status=AssignmentStatus.ASSIGNED)
        if expected is None:
            uow.assignments.add(assigned)
        else:
            uow.assignments.save(assigned, expected)
        assert row.dropoff is not None
        _publish(
            uow,
            CarAssigned(
                ride_id=row.ride_id,
                car_id=car.car_id,
                car_lat=position[0],
                car_lon=position[1],
                pickup=pickup,
                dropoff=row.dropoff,
                pickup_eta_seconds=round(candidate.eta_s, 1),
                assigned_at=_now(),
                replaces_car_id=replaces,
            ),
            row.ride_id,
        )
        uow.mark_consumed(event)
        try:
            uow.commit()
        except Conflict as conflict:
            if "car" in conflict.labels:
                log.info("car %s was taken meanwhile; trying the next one", car.car_id)
                return False
            raise
        self.fleet.refresh(
            replace(car, state=CarState.RESERVED, ride_id=row.ride_id, version=car.version + 1)
        )
        return True

    def on_ride_cancelled(self, event: CloudEvent, data: RideCancelled) -> None:
        """Release the ride's car, or leave a tombstone so a late request assigns nothing."""
        uow = self.uow()
        row = uow.assignments.get(data.ride_id)
        if row is None:
            uow.assignments.add(Assignment(data.ride_id, AssignmentStatus.CANCELLED))
        elif row.status == AssignmentStatus.ASSIGNED:
            uow.assignments.save(row.moved(status=AssignmentStatus.CANCELLED), row.version)
            self._free_car(uow, row, reason=data.reason)
        uow.mark_consumed(event)
        uow.commit()
        self._refresh_car(row)

    def _free_car(self, uow: UnitOfWork, row: Assignment, reason: str) -> None:
        car = uow.cars.get(row.car_id) if row.car_id else None
        if car is not None and car.serves(row.ride_id):
            uow.cars.change(car, CarState.AVAILABLE, None)
            _publish(uow, CarReleased(ride_id=row.ride_id, car_id=car.car_id, reason=reason), row.ride_id)

    def on_trip_started(self, event: CloudEvent, data: TripStarted) -> None:
        uow = self.uow()
        row = uow.assignments.get(data.ride_id)
        car = uow.cars.get(data.car_id)
        if row is not None and row.status == AssignmentStatus.ASSIGNED and row.car_id == data.car_id:
            uow.assignments.save(row.moved(trip_started=True), row.version)
            if car is not None and car.serves(data.ride_id):
                uow.cars.change(car, CarState.ON_TRIP, data.ride_id)
        uow.mark_consumed(event)
        uow.commit()
        self._refresh_car(row)

    def on_trip_completed(self, event: CloudEvent, data: TripCompleted) -> None:
        """The car is available again where it dropped the rider off."""
        uow = self.uow()
        row = uow.assignments.get(data.ride_id)
        car = uow.cars.get(data.car_id)
        if row is not None and row.status == AssignmentStatus.ASSIGNED:
            uow.assignments.save(row.moved(status=AssignmentStatus.COMPLETED), row.version)
        if car is not None and car.serves(data.ride_id):
            uow.cars.change(car, CarState.AVAILABLE, None)
        uow.mark_consumed(event)
        uow.commit()
        self._refresh_car(row, data.car_id)

    def on_car_stalled(self, event: CloudEvent, data: CarStalled) -> None:
        """Take the car out of service and send another; mid-trip it picks the rider up where it stopped."""
        first = self.uow()
        row = first.assignments.get(data.ride_id) if data.ride_id else None
        car = first.cars.get(data.car_id)
        needs_new_car = (
            row is not None and row.status == AssignmentStatus.ASSIGNED and row.car_id == data.car_id
        )
        if car is not None and car.state != CarState.OUT_OF_SERVICE:
            first.cars.change(car, CarState.OUT_OF_SERVICE, car.ride_id)
            _publish(first, CarOutOfService(car_id=data.car_id, reason="stalled"), data.car_id)
            if not needs_new_car:
                first.mark_consumed(event)
            first.commit()
            self._refresh_car(None, data.car_id)
        elif not needs_new_car:
            self._consume_only(event)
        if needs_new_car:
            assert row is not None
            self._replace_car(event, row, data)

    def _replace_car(self, event: CloudEvent, row: Assignment, data: CarStalled) -> None:
        pickup = row.pickup
        if row.trip_started or pickup is None:
            pickup = Place(label=f"where car {data.car_id} stopped", lat=data.lat, lon=data.lon)
        for candidate in self.candidates(pickup.lat, pickup.lon, exclude=data.car_id)[:MAX_ATTEMPTS]:
            if self._try_assign(event, row, row.version, candidate, pickup, replaces=data.car_id):
                return
        raise NoReplacementYet(f"no car can replace {data.car_id} for ride {row.ride_id} yet")

    # --- operator ---------------------------------------------------------------------------------------
    def return_to_service(self, car_id: str) -> Car:
        uow = self.uow()
        car = uow.cars.get(car_id)
        if car is None:
            raise CarNotFound(car_id)
        if car.state != CarState.OUT_OF_SERVICE:
            raise NotOutOfService(car_id)
        uow.cars.change(car, CarState.AVAILABLE, None)
        uow.commit()
        back = replace(car, state=CarState.AVAILABLE, ride_id=None, version=car.version + 1)
        self.fleet.refresh(back)
        return back

    # --- helpers ----------------------------------------------------------------------------------------
    def _consume_only(self, event: CloudEvent) -> None:
        uow = self.uow()
        uow.mark_consumed(event)
        uow.commit()

    def _refresh_car(self, row: Assignment | None, car_id: str | None = None) -> None:
        target = car_id or (row.car_id if row else None)
        car = self.uow().cars.get(target) if target else None
        if car is not None:
            self.fleet.refresh(car)
