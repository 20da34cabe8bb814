"""The fleet on two clocks: simulated time moves the cars, wall time paces their reports. Pure, no I/O.

``tick(wall_now)`` advances every car by the wall time since the last tick times the speed factor and
returns what to report: every phase change (always, ``essential``) plus the periodic records, which are
bounded in WALL time whatever the speed factor — a car with a ride at most one per ``active_every_s``,
an idle car a heartbeat every ``idle_every_s``. Heartbeats fall in slots of about ``IDLE_SLOT_S``, the
fleet spread evenly over them: a few records every slot rather than one at every tick, so a parked
fleet costs one small batch per slot downstream, and never a fleet-wide burst.

It also knows which cars' stored rows are behind (``due_saves``): a car whose phase, ride or row version
changed since it was last saved, and a progressing car (driving, boarding) last saved ``every_s`` wall
seconds ago or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from acr.errors import ServiceError
from car_simulator.domain import Assignment, Car, Snapshot, Telemetry

ACTIVE_EVERY_S = 0.5
IDLE_EVERY_S = 30.0  # a parked car does not move: a heartbeat, not a position stream
IDLE_SLOT_S = 10.0  # few, small batches: readers of a quiet stream back off between them
MAX_TICK_WALL_S = (
    1.0  # a late tick (GC pause, overloaded host) slows simulated time instead of teleporting cars
)


@dataclass(frozen=True)
class Report:
    """A record to send: ``essential`` ones (phase changes) are never dropped under back-pressure."""

    telemetry: Telemetry
    wall_time: float
    essential: bool


class UnknownCar(ServiceError):
    """No car has that id."""

    status, code = 404, "car_not_found"


class Simulation:
    """Every car, the simulated clock and the report pacing. Not thread-safe: the caller holds a lock."""

    def __init__(
        self,
        cars: Iterable[Car],
        sim_speed: float,
        wall_start: float,
        active_every_s: float = ACTIVE_EVERY_S,
        idle_every_s: float = IDLE_EVERY_S,
        sim_start_s: float = 0.0,
    ) -> None:
        self.cars = {car.car_id: car for car in cars}
        self.sim_speed = sim_speed
        self.sim_time_s = sim_start_s
        self.active_every_s = active_every_s
        self.idle_every_s = idle_every_s
        self._wall = wall_start
        self._pending: list[Telemetry] = []
        self._wall_start = wall_start
        slots = max(1, round(idle_every_s / IDLE_SLOT_S))
        self._slot_s = idle_every_s / slots
        self._next_report = {
            cid: wall_start + self._slot_s * (1 + i % slots) for i, cid in enumerate(self.cars)
        }
        # car -> (its state key, wall time) when its row was last known to hold that state
        self._saved = {cid: (car.state_key(), wall_start) for cid, car in self.cars.items()}

    def car(self, car_id: str) -> Car:
        try:
            return self.cars[car_id]
        except KeyError:
            raise UnknownCar(f"no car {car_id}") from None

    @property
    def moving_cars(self) -> int:
        return sum(1 for car in self.cars.values() if car.moving)

    # ----- commands: each phase change is reported at the next tick ----------------------------
    def assign(self, car_id: str, assignment: Assignment) -> bool:
        return self._changed(car_id, self.car(car_id).assign(assignment))

    def release(self, car_id: str, ride_id: str) -> bool:
        return self._changed(car_id, self.car(car_id).release(ride_id))

    def take_out_of_service(self, car_id: str) -> bool:
        return self._changed(car_id, self.car(car_id).take_out_of_service())

    def stall(self, car_id: str) -> bool:
        return self._changed(car_id, self.car(car_id).stall())

    def unstall(self, car_id: str) -> bool:
        return self._changed(car_id, self.car(car_id).unstall())

    def change(self, car_id: str, command: Callable[[Car], bool]) -> bool:
        """Run ``command`` on the car (one of the ``Car`` commands, as a function of the car)."""
        return self._changed(car_id, command(self.car(car_id)))

    def add(self, cars: Iterable[Car]) -> None:
        """Drive these cars from now on (a group this replica gained): each is reported at the next tick and
        counts as saved as it is (it was just read from its row)."""
        for car in cars:
            self.cars[car.car_id] = car
            self._saved[car.car_id] = (car.state_key(), self._wall)
            self._next_report[car.car_id] = self._next_time(car, self._wall)
            self._pending.append(car.telemetry(self.sim_time_s))

    def drop(self, car_ids: Iterable[str]) -> list[Car]:
        """Stop driving these cars (a group this replica lost); returns the ones it drove."""
        dropped = [self.cars.pop(cid) for cid in car_ids if cid in self.cars]
        for car in dropped:
            del self._saved[car.car_id], self._next_report[car.car_id]
        self._pending = [t for t in self._pending if t.car_id in self.cars]
        return dropped

    def report_all(self) -> None:
        """Report every car at the next tick (a restarted fleet shows each car as it is, at once)."""
        self._pending += [car.telemetry(self.sim_time_s) for car in self.cars.values()]

    def _changed(self, car_id: str, changed: bool) -> bool:
        if changed:
            self._pending.append(self.cars[car_id].telemetry(self.sim_time_s))
        return changed

    # ----- time --------------------------------------------------------------------------------
    def tick(self, wall_now: float) -> list[Report]:
        """Advance to ``wall_now`` (seconds) and return the records to send, in order per car."""
        wall_dt = min(max(0.0, wall_now - self._wall), MAX_TICK_WALL_S)
        self._wall = wall_now
        start, dt = self.sim_time_s, wall_dt * self.sim_speed
        self.sim_time_s = start + dt
        reports = [self._essential(t, wall_now) for t in self._pending]
        self._pending = []
        for car in self.cars.values():
            reports += [self._essential(t, wall_now) for t in car.advance(dt, start)]
            if wall_now >= self._next_report[car.car_id]:
                reports.append(Report(car.telemetry(self.sim_time_s), wall_now, essential=False))
                self._next_report[car.car_id] = self._next_time(car, wall_now)
        return reports

    def _essential(self, telemetry: Telemetry, wall_now: float) -> Report:
        # a phase change restarts the car's periodic timer, so it never adds a burst on top of it
        car = self.cars[telemetry.car_id]
        self._next_report[car.car_id] = self._next_time(car, wall_now)
        return Report(telemetry, wall_now, essential=True)

    def _next_time(self, car: Car, wall_now: float) -> float:
        """When the car reports next: a car with a ride ``active_every_s`` from now; an idle one in the
        first heartbeat slot ``idle_every_s`` or more from now."""
        if car.ride_id is not None:
            return wall_now + self.active_every_s
        slots_from_start = (wall_now + self.idle_every_s - self._wall_start) / self._slot_s
        return self._wall_start + math.ceil(slots_from_start - 1e-9) * self._slot_s

    # ----- saving ------------------------------------------------------------------------------
    def due_saves(self, wall_now: float, every_s: float) -> list[Snapshot]:
        """Copies of the cars whose stored row is behind: their state key changed since their last save,
        or they progress (driving, boarding) and were last saved ``every_s`` wall seconds ago or more."""
        due = []
        for car in self.cars.values():
            key, at = self._saved[car.car_id]
            if key != car.state_key() or (car.progressing and wall_now - at >= every_s):
                due.append(Snapshot(car.copy(), self.sim_time_s))
        return due

    def saved(self, car: Car, wall_now: float) -> None:
        """``car`` (a copy from ``due_saves``) is what the car's row holds now (or a newer command's row
        does: then the car's own state key has moved on, and it is due again). A car dropped since is
        left alone."""
        if car.car_id in self.cars:
            self._saved[car.car_id] = (car.state_key(), wall_now)

    def committed(self, car_id: str, stored: Car) -> None:
        """A command's row at ``stored.version`` was committed and the car obeyed the command: it takes
        that version, and is saved as of now when its state is what the row holds."""
        car = self.car(car_id)
        car.version = stored.version
        if car.state_key() == stored.state_key():
            self._saved[car_id] = (car.state_key(), self._wall)
