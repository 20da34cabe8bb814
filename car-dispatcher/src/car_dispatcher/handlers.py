"""Use cases of the fleet context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from acr import catalog
from acr.catalog import CarAssigned, EventData, NoCarAvailable, RideRequested
from acr.envelope import CloudEvent
from acr.topology import bus_name
from acr.unit_of_work import Conflict, Destination, Outgoing
from car_dispatcher.domain import Candidate, DispatchPaused, ranked
from car_dispatcher.ports import Roads, UnitOfWork

log = logging.getLogger(__name__)
FLEET_BUS = Destination("bus", bus_name("fleet"))
MAX_ATTEMPTS = 5


@dataclass
class DispatchControl:
    """Operator switches (``PUT /ops/dispatch``)."""

    paused: bool = False


@dataclass
class Dispatcher:
    uow: Callable[[], UnitOfWork]
    roads: Roads
    max_pickup_eta_s: float
    control: DispatchControl = field(default_factory=DispatchControl)

    def pickup_eta(self, lat: float, lon: float) -> Candidate | None:
        """The nearest available car's road ETA to a pickup, within the maximum; None if there is none."""
        cars = self.uow().cars.available()
        best = ranked(self.roads.etas_to(lat, lon, cars, self.max_pickup_eta_s), self.max_pickup_eta_s)
        return best[0] if best else None

    def handle(self, event: CloudEvent, data: EventData) -> None:
        """Entry point for the fleet's queue."""
        if isinstance(data, RideRequested):
            self.on_ride_requested(event, data)

    def on_ride_requested(self, event: CloudEvent, data: RideRequested) -> None:
        """Reserve the nearest available car (never two rides on one car) or say there is none."""
        if self.control.paused:
            raise DispatchPaused("dispatch is paused")
        for candidate in self._candidates(data)[:MAX_ATTEMPTS]:
            try:
                self._assign(event, data, candidate)
                return
            except Conflict as conflict:
                if "car" not in conflict.labels:
                    raise
                log.info("car %s was taken meanwhile; trying the next one", candidate.car_id)
        self._no_car(event, data)

    def _candidates(self, data: RideRequested) -> list[Candidate]:
        cars = self.uow().cars.available()
        etas = self.roads.etas_to(data.pickup.lat, data.pickup.lon, cars, self.max_pickup_eta_s)
        return ranked(etas, self.max_pickup_eta_s)

    def _assign(self, event: CloudEvent, data: RideRequested, candidate: Candidate) -> None:
        uow = self.uow()
        car = uow.cars.get(candidate.car_id)
        if car is None:
            raise Conflict(["car"])
        uow.cars.reserve(car, data.ride_id)
        uow.assignments.add(data.ride_id, car.car_id)
        assigned = CarAssigned(
            ride_id=data.ride_id, car_id=car.car_id, car_lat=car.lat, car_lon=car.lon, pickup=data.pickup,
            dropoff=data.dropoff, pickup_eta_seconds=round(candidate.eta_s, 1), assigned_at=_now(),
        )
        uow.record(Outgoing(catalog.record(assigned, subject=data.ride_id), FLEET_BUS))
        uow.mark_consumed(event)
        uow.commit()

    def _no_car(self, event: CloudEvent, data: RideRequested) -> None:
        uow = self.uow()
        uow.assignments.add(data.ride_id, None)
        none_left = NoCarAvailable(ride_id=data.ride_id, reason="no available car can reach the pickup in time")
        uow.record(Outgoing(catalog.record(none_left, subject=data.ride_id), FLEET_BUS))
        uow.mark_consumed(event)
        uow.commit()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
