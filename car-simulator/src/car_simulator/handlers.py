"""Use cases of the car edge: the fleet behind its lock, one function per message, the simulation loop
and the saver of the cars' progress.

Idempotent consumption with durable cars: each handler PLANS (computes the legs, which may fail and be
redelivered), tries the command on a copy of the car and, if that changes what is stored, stages the
car's row at the next version in the message's unit of work; the commit writes the marker and the row
together (``Duplicate`` on a redelivery: nothing is written or applied, so a redelivered ``CarAssigned``
never restarts a drive), and only then the car obeys the command in memory, an after-commit step that
cannot fail. The cars add a second, natural guard: a car ignores an assignment for a ride it already
serves or has already finished or been released from (an assignment that arrives after its release, too).

While cars drive, ``ProgressSaver`` writes their progress (phase, leg position, simulated time) from
its own thread: on each phase change and at a bounded pace, each write conditional on the row's version
so a late progress write never overwrites a newer command's row.
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
from car_simulator.domain import Assignment, Car, Point, Snapshot
from car_simulator.ports import CarStore, Roads, TelemetrySink, UnitOfWork
from car_simulator.simulation import Report, Simulation

log = logging.getLogger(__name__)
TICK_S = 0.25
SAVE_TICK_S = 1.0
T = TypeVar("T")
Command = Callable[[Car], bool]
"""One of the ``Car`` commands, as a function of the car (tried on a copy first, then obeyed)."""


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

    def plan(self, car_id: str, command: Command) -> Snapshot | None:
        """What ``command`` makes of the car, as a copy at the next row version; None when it changes
        nothing that is stored."""
        with self.lock:
            car = self.simulation.car(car_id)
            after = car.copy()
            command(after)
            if after.state_key() == car.state_key():
                return None
            after.version = car.version + 1
            return Snapshot(after, self.simulation.sim_time_s)

    def obey(self, car_id: str, command: Command, stored: Car, what: str) -> None:
        """The car's row ``stored`` is committed: the car obeys ``command`` and takes the row's version."""
        with self.lock:
            changed = self.simulation.change(car_id, command)
            self.simulation.committed(car_id, stored)
        log.info("car %s %s%s", car_id, what, "" if changed else ": nothing to change")

    def tick(self, wall_now: float) -> list[Report]:
        with self.lock:
            return self.simulation.tick(wall_now)


# --- the fleet events --------------------------------------------------------------------------------------
def _command(uow: UnitOfWork, simulator: CarSimulator, car_id: str, command: Command, what: str) -> None:
    """Stage the car's row as ``command`` leaves it; the car obeys once that row and the marker commit."""
    if simulator.position(car_id) is None:
        return
    planned = simulator.plan(car_id, command)
    if planned is None:
        log.info("car %s %s: nothing to change", car_id, what)
        return
    uow.cars.save(planned)
    uow.after_commit(lambda: simulator.obey(car_id, command, planned.car, what))


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
    _command(uow, simulator, data.car_id, lambda car: car.assign(assignment), f"assigned to {data.ride_id}")


def on_car_released(
    uow: UnitOfWork, data: CarReleased, _event: CloudEvent, *, simulator: CarSimulator
) -> None:
    """Stop and idle where the car is."""
    _command(
        uow, simulator, data.car_id, lambda car: car.release(data.ride_id), f"released from {data.ride_id}"
    )


def on_car_out_of_service(
    uow: UnitOfWork, data: CarOutOfService, _event: CloudEvent, *, simulator: CarSimulator
) -> None:
    """Stay where it is, not driving, without a ride."""
    _command(uow, simulator, data.car_id, lambda car: car.take_out_of_service(), "out of service")


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


@dataclass
class ProgressSaver:
    """Every ``tick_s``, writes the rows of the cars that are behind (``Simulation.due_saves``: a phase
    change, or ``every_s`` of progress), one conditional write per car, in its own thread: a slow or
    unreachable store never holds up the fleet, and a car that could not be saved is due again at the next
    tick with its newest state. When the service stops, every progressing car is saved once more."""

    simulator: CarSimulator
    store: CarStore
    every_s: float
    tick_s: float = SAVE_TICK_S
    clock: Callable[[], float] = time.time
    written: int = 0
    stale: int = 0  # a newer command's row was there: nothing written
    failed: int = 0

    def run(self, stop: threading.Event) -> None:
        """Save until ``stop`` is set, then save every progressing car once (giving up at the first
        failure: a store that does not answer must not hold up the stop)."""
        while not stop.wait(self.tick_s):
            self.attempt()
        self.attempt(every_s=0.0)

    def attempt(self, every_s: float | None = None) -> None:
        """``step``, logging a failure (the store is unreachable: what is due stays due)."""
        try:
            self.step(every_s)
        except Exception:
            log.warning("saving the cars failed; what is due stays due", exc_info=True)

    def step(self, every_s: float | None = None) -> int:
        """Write every car that is due; returns how many were due."""
        now = self.clock()
        pace = self.every_s if every_s is None else every_s
        due = self.simulator.locked(lambda sim: sim.due_saves(now, pace))
        for snapshot in due:
            self._save(snapshot, now)
        return len(due)

    def _save(self, snapshot: Snapshot, now: float) -> None:
        try:
            written = self.store.save_progress(snapshot)
        except Exception:
            self.failed += 1
            raise
        if written:
            self.written += 1
        else:
            self.stale += 1
        self.simulator.locked(lambda sim: sim.saved(snapshot.car, now))

    def stats(self) -> dict[str, int]:
        """Progress writes so far (``/v1/ops/telemetry``)."""
        return {"written": self.written, "stale": self.stale, "failed": self.failed}
