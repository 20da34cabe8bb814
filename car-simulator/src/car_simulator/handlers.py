"""Use cases of the car edge: one function per message, the stall controls and the simulation loop.

Idempotent consumption: the cars live in memory, so the idempotency marker cannot share a transaction
with the state. The order is therefore "marker first, then the in-memory change": each handler only
PLANS (computes the legs, which may fail and be redelivered), the tiny unit of work commits the marker
(``Duplicate`` on a redelivery: nothing is applied, so a redelivered ``CarAssigned`` never restarts a
drive), and only then applies the plan — an in-memory step that cannot fail. The cars add a second,
natural guard: a car ignores an assignment for a ride it already serves or has already finished or
been released from (an assignment that arrives after its release, too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.consumer import Handler, idempotent
from acr.envelope import CloudEvent
from car_simulator.domain import Assignment, Car, Point
from car_simulator.ports import Inbox, Roads, TelemetrySink
from car_simulator.simulation import Report, Simulation

log = logging.getLogger(__name__)
TICK_S = 0.25


@dataclass
class CarSimulator:
    """The fleet behind one lock: the consumer thread, the tick thread and HTTP calls all go through it."""

    simulation: Simulation
    roads: Roads
    boarding_s: float
    inbox: Callable[[], Inbox]
    lock: threading.RLock = field(default_factory=threading.RLock)

    def handler(self) -> Handler:
        """The entry point for the ``events`` queue."""
        return idempotent(
            self.inbox,
            {
                CarAssigned: self.on_car_assigned,
                CarReleased: self.on_car_released,
                CarOutOfService: self.on_car_out_of_service,
            },
        )

    def on_car_assigned(self, uow: Inbox, data: CarAssigned, _: CloudEvent) -> None:
        """Drive to the pickup, board, drive to the drop-off, idle there (a replacement car alike)."""
        start = self._position(data.car_id)
        if start is None:
            return
        pickup, dropoff = Point(data.pickup.lat, data.pickup.lon), Point(data.dropoff.lat, data.dropoff.lon)
        assignment = Assignment(
            ride_id=data.ride_id,
            pickup=pickup,
            dropoff=dropoff,
            to_pickup=self.roads.leg(start, pickup),
            to_dropoff=self.roads.leg(pickup, dropoff),
            boarding_s=self.boarding_s,
        )
        uow.after_commit(
            lambda: self._apply(
                data.car_id, lambda sim: sim.assign(data.car_id, assignment), f"assigned to {data.ride_id}"
            )
        )

    def on_car_released(self, uow: Inbox, data: CarReleased, _: CloudEvent) -> None:
        """Stop and idle where the car is."""
        uow.after_commit(
            lambda: self._apply(
                data.car_id,
                lambda sim: sim.release(data.car_id, data.ride_id),
                f"released from {data.ride_id}",
            )
        )

    def on_car_out_of_service(self, uow: Inbox, data: CarOutOfService, _: CloudEvent) -> None:
        """Stay where it is, not driving, without a ride."""
        uow.after_commit(
            lambda: self._apply(
                data.car_id, lambda sim: sim.take_out_of_service(data.car_id), "out of service"
            )
        )

    def _position(self, car_id: str) -> Point | None:
        with self.lock:
            car = self.simulation.cars.get(car_id)
            if car is None:
                log.warning(
                    "event for unknown car %s ignored (is ACR_FLEET_SIZE the same everywhere?)", car_id
                )
                return None
            return car.position

    def _apply(self, car_id: str, change: Callable[[Simulation], bool], what: str) -> None:
        with self.lock:
            if car_id not in self.simulation.cars:
                return
            changed = change(self.simulation)
        log.info("car %s %s%s", car_id, what, "" if changed else ": nothing to change")

    # ----- stall controls (demos and the stall path of the saga) -------------------------------
    def stall(self, car_id: str) -> dict[str, Any]:
        with self.lock:
            self.simulation.stall(car_id)
            return car_detail(self.simulation.car(car_id))

    def unstall(self, car_id: str) -> dict[str, Any]:
        with self.lock:
            self.simulation.unstall(car_id)
            return car_detail(self.simulation.car(car_id))

    # ----- views -------------------------------------------------------------------------------
    def cars(self) -> list[dict[str, Any]]:
        with self.lock:
            return [car_summary(car) for car in self.simulation.cars.values()]

    def car(self, car_id: str) -> dict[str, Any]:
        with self.lock:
            return car_detail(self.simulation.car(car_id)) | {
                "simTimeS": round(self.simulation.sim_time_s, 1)
            }

    def moving_cars(self) -> int:
        with self.lock:
            return self.simulation.moving_cars

    def tick(self, wall_now: float) -> list[Report]:
        with self.lock:
            return self.simulation.tick(wall_now)


def car_summary(car: Car) -> dict[str, Any]:
    return {
        "carId": car.car_id,
        "phase": car.phase.value,
        "rideId": car.ride_id,
        "lat": car.lat,
        "lon": car.lon,
        "speedKmh": round(car.speed_kmh, 1),
    }


def car_detail(car: Car) -> dict[str, Any]:
    target = {"lat": car.target.lat, "lon": car.target.lon} if car.target else None
    return car_summary(car) | {
        "heading": round(car.heading, 1),
        "battery": round(car.battery, 2),
        "odometerM": round(car.odometer_m, 1),
        "target": target,
        "stalled": car.stalled,
    }


@dataclass
class SimulationLoop:
    """One thread, a fixed tick: advance every car, hand the reports to the publisher's queue."""

    simulator: CarSimulator
    sink: TelemetrySink
    tick_s: float = TICK_S
    clock: Callable[[], float] = time.time

    def run(self, stop: threading.Event) -> None:
        deadline = self.clock()
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # one bad tick must not stop the fleet
                log.exception("simulation tick failed")
            deadline += self.tick_s
            late = self.clock() - deadline
            if late > self.tick_s:  # fell behind (slow host): skip ahead instead of bursting ticks
                deadline = self.clock()
            stop.wait(max(0.0, deadline - self.clock()))

    def step(self) -> int:
        reports = self.simulator.tick(self.clock())
        for report in reports:
            self.sink.offer(report)
        return len(reports)
