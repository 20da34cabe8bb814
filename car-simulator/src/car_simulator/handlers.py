"""Use cases of the car edge: the fleet behind its lock, one function per message, the simulation loop.

Idempotent consumption: the cars live in memory, so the idempotency marker cannot share a transaction
with the state. The order is therefore "marker first, then the in-memory change": each handler only
PLANS (computes the legs, which may fail and be redelivered) and stages the change as an after-commit
action; the unit of work commits the marker (``Duplicate`` on a redelivery: nothing is applied, so a
redelivered ``CarAssigned`` never restarts a drive), and only then runs the action — an in-memory step
that cannot fail. The cars add a second, natural guard: a car ignores an assignment for a ride it already
serves or has already finished or been released from (an assignment that arrives after its release, too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from car_simulator.domain import Assignment, Point
from car_simulator.ports import Roads, TelemetrySink, UnitOfWork
from car_simulator.simulation import Report, Simulation

log = logging.getLogger(__name__)
TICK_S = 0.25
T = TypeVar("T")


@dataclass
class CarSimulator:
    """The fleet behind one lock: the consumer, the simulation loop and HTTP calls all go through it."""

    simulation: Simulation
    lock: threading.RLock = field(default_factory=threading.RLock)

    def locked(self, action: Callable[[Simulation], T]) -> T:
        """``action``'s result on the fleet, with no other change in between."""
        with self.lock:
            return action(self.simulation)

    def position(self, car_id: str) -> Point | None:
        """Where the car is now; None (and a warning) for a car this fleet does not have."""
        with self.lock:
            car = self.simulation.cars.get(car_id)
            if car is None:
                log.warning(
                    "event for unknown car %s ignored (is ACR_FLEET_SIZE the same everywhere?)", car_id
                )
                return None
            return car.position

    def apply(self, car_id: str, change: Callable[[Simulation], bool], what: str) -> None:
        """Run ``change`` on the fleet (not for a car it does not have) and log what it did."""
        with self.lock:
            if car_id not in self.simulation.cars:
                return
            changed = change(self.simulation)
        log.info("car %s %s%s", car_id, what, "" if changed else ": nothing to change")

    def tick(self, wall_now: float) -> list[Report]:
        with self.lock:
            return self.simulation.tick(wall_now)


# --- the fleet events --------------------------------------------------------------------------------------
def on_car_assigned(
    uow: UnitOfWork,
    data: CarAssigned,
    _event: CloudEvent,
    *,
    simulator: CarSimulator,
    roads: Roads,
    boarding_s: float,
) -> None:
    """Drive to the pickup, board, drive to the drop-off, idle there (a replacement car alike)."""
    start = simulator.position(data.car_id)
    if start is None:
        return
    pickup, dropoff = Point(data.pickup.lat, data.pickup.lon), Point(data.dropoff.lat, data.dropoff.lon)
    assignment = Assignment(
        ride_id=data.ride_id,
        pickup=pickup,
        dropoff=dropoff,
        to_pickup=roads.leg(start, pickup),
        to_dropoff=roads.leg(pickup, dropoff),
        boarding_s=boarding_s,
    )
    uow.after_commit(
        lambda: simulator.apply(
            data.car_id, lambda sim: sim.assign(data.car_id, assignment), f"assigned to {data.ride_id}"
        )
    )


def on_car_released(
    uow: UnitOfWork, data: CarReleased, _event: CloudEvent, *, simulator: CarSimulator
) -> None:
    """Stop and idle where the car is."""
    uow.after_commit(
        lambda: simulator.apply(
            data.car_id, lambda sim: sim.release(data.car_id, data.ride_id), f"released from {data.ride_id}"
        )
    )


def on_car_out_of_service(
    uow: UnitOfWork, data: CarOutOfService, _event: CloudEvent, *, simulator: CarSimulator
) -> None:
    """Stay where it is, not driving, without a ride."""
    uow.after_commit(
        lambda: simulator.apply(
            data.car_id, lambda sim: sim.take_out_of_service(data.car_id), "out of service"
        )
    )


def handlers(*, simulator: CarSimulator, roads: Roads, boarding_s: float) -> Handlers[UnitOfWork]:
    """The table of ``acr-car-simulator-events``."""
    return (
        Handlers[UnitOfWork]()
        .on(CarAssigned, on_car_assigned, simulator=simulator, roads=roads, boarding_s=boarding_s)
        .on(CarReleased, on_car_released, simulator=simulator)
        .on(CarOutOfService, on_car_out_of_service, simulator=simulator)
    )


# --- the clock ---------------------------------------------------------------------------------------------
@dataclass
class SimulationLoop:
    """A fixed tick: advance every car, hand the reports to the publisher's queue."""

    simulator: CarSimulator
    sink: TelemetrySink
    tick_s: float = TICK_S
    clock: Callable[[], float] = time.time

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set (waiting on it between ticks)."""
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
