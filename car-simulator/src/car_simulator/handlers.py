"""Use cases of the car edge: the fleet behind its lock, the fleet events posted to the cars' mailboxes,
the commands applied by the replica driving the car, the groups it gains and loses, the simulation loop
and the saver of the cars' progress.

Several replicas share the fleet: it is split into ``CAR_GROUPS`` groups and a replica drives only the
cars of the groups whose lease it holds (``FleetGroups``). A fleet event may be consumed by any replica,
so the consumer does not touch the car: it appends a ``CarCommand`` to the group's mailbox in the unit of
work of the message's marker (a redelivery is a ``Duplicate``: nothing is posted twice). The replica that
holds the group (``CommandApplier``) takes the mailbox's commands in order; for each it tries the command
on a copy of the car and commits, in ONE transaction fenced by the group's lease, the car's row at the
next version (when the command changes what is stored) and the command's removal; only then the car
obeys in memory. A command is thus applied once, in the order it was posted, by the car's one driver.
The cars add a second guard: a car ignores an assignment for a ride it has already finished or been
released from (an assignment that arrives after its release, too), and one for the ride it serves that is
not newer, by its ``sequence`` (the ride's dispatch count), than the one it applied.

While cars drive, ``ProgressSaver`` writes their progress (phase, leg position, simulated time) from
its own thread: on each phase change and at a bounded pace, each write conditional on the row's version
(a late progress write never overwrites a newer command's row) and fenced by the group's lease (a
replica that lost the group cannot overwrite what its new driver writes).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.fleet import FleetCar
from acr.unit_of_work import Conflict
from car_simulator.domain import (
    Assignment,
    Car,
    CarCommand,
    CommandKind,
    Point,
    Snapshot,
    car_group,
    initial_battery,
)
from car_simulator.ports import CarStore, Fenced, GroupLease, Mailbox, Roads, TelemetrySink, UnitOfWork
from car_simulator.simulation import Report, Simulation, UnknownCar

log = logging.getLogger(__name__)
TICK_S = 0.25
SAVE_TICK_S = 1.0
APPLY_POLL_S = 0.5
T = TypeVar("T")
Command = Callable[[Car], bool]
"""One of the ``Car`` commands, as a function of the car (tried on a copy first, then obeyed)."""


@dataclass
class CarSimulator:
    """The cars this replica drives, behind one lock: the applier, the simulation loop, the group
    changes and HTTP calls all go through it."""

    simulation: Simulation
    lock: threading.RLock = field(default_factory=threading.RLock)

    def locked(self, action: Callable[[Simulation], T]) -> T:
        """``action``'s result on the fleet, with no other change in between."""
        with self.lock:
            return action(self.simulation)

    def position(self, car_id: str) -> Point | None:
        """Where the car is now; None for a car this replica does not drive."""
        with self.lock:
            car = self.simulation.cars.get(car_id)
            return None if car is None else car.position

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
            if car_id not in self.simulation.cars:
                return  # its group was lost meanwhile: its new driver reads the committed row
            changed = self.simulation.change(car_id, command)
            self.simulation.committed(car_id, stored)
        log.info("car %s %s%s", car_id, what, "" if changed else ": nothing to change")

    def tick(self, wall_now: float) -> list[Report]:
        with self.lock:
            return self.simulation.tick(wall_now)


# --- the fleet events: posted to the car's group mailbox, whichever replica consumes them ---------------
@dataclass(frozen=True)
class Fleet:
    """Every car of the seeded fleet (the same list in every replica), and how to wake the applier when
    a command is posted for a group this replica drives."""

    cars: Mapping[str, FleetCar]
    posted: Callable[[CarCommand], None] = lambda _command: None

    def knows(self, car_id: str) -> bool:
        if car_id not in self.cars:
            log.warning("command for unknown car %s ignored (is ACR_FLEET_SIZE the same everywhere?)", car_id)
            return False
        return True


def _post(uow: UnitOfWork, fleet: Fleet, command: CarCommand) -> None:
    if fleet.knows(command.car_id):
        uow.commands.post(command)
        uow.after_commit(lambda: fleet.posted(command))


def on_car_assigned(uow: UnitOfWork, data: CarAssigned, event: CloudEvent, *, fleet: Fleet) -> None:
    """Drive to the pickup, board, drive to the drop-off, idle there (a replacement car alike)."""
    command = CarCommand(
        event.id,
        data.car_id,
        CommandKind.ASSIGN,
        ride_id=data.ride_id,
        pickup=Point(data.pickup.lat, data.pickup.lon),
        dropoff=Point(data.dropoff.lat, data.dropoff.lon),
        sequence=event.sequence,
    )
    _post(uow, fleet, command)


def on_car_released(uow: UnitOfWork, data: CarReleased, event: CloudEvent, *, fleet: Fleet) -> None:
    """Stop and idle where the car is."""
    _post(uow, fleet, CarCommand(event.id, data.car_id, CommandKind.RELEASE, ride_id=data.ride_id))


def on_car_out_of_service(uow: UnitOfWork, data: CarOutOfService, event: CloudEvent, *, fleet: Fleet) -> None:
    """Stay where it is, not driving, without a ride."""
    _post(uow, fleet, CarCommand(event.id, data.car_id, CommandKind.OUT_OF_SERVICE))


def handlers(*, fleet: Fleet) -> Handlers[UnitOfWork]:
    """The table of ``acr-car-simulator-events``."""
    return (
        Handlers[UnitOfWork]()
        .on(CarAssigned, on_car_assigned, fleet=fleet)
        .on(CarReleased, on_car_released, fleet=fleet)
        .on(CarOutOfService, on_car_out_of_service, fleet=fleet)
    )


def operator_command(mailbox: Mailbox, fleet: Fleet, car_id: str, kind: CommandKind) -> CarCommand:
    """An operator's stall or unstall, posted like a fleet event (the car's driver may be another replica)."""
    if car_id not in fleet.cars:
        raise UnknownCar(f"no car {car_id}")
    command = CarCommand(str(uuid.uuid4()), car_id, kind)
    mailbox.post(command)
    fleet.posted(command)
    return command


# --- the commands: applied by the replica that drives the car's group ------------------------------------
@dataclass
class CommandApplier:
    """Applies the pending commands of every group this replica holds, in order, each once: every
    ``poll_s`` (a command consumed by another replica) or at once when woken (one this replica consumed)."""

    simulator: CarSimulator
    mailbox: Mailbox
    unit_of_work: Callable[[], UnitOfWork]
    leases: Callable[[], dict[str, GroupLease]]
    roads: Roads
    boarding_s: float
    poll_s: float = APPLY_POLL_S
    applied: int = 0
    _woken: threading.Event = field(default_factory=threading.Event)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.warning("applying the cars' commands failed; they stay pending", exc_info=True)
            self._woken.wait(self.poll_s)
            self._woken.clear()

    def wake(self) -> None:
        self._woken.set()

    def posted(self, command: CarCommand) -> None:
        """A command was posted here: apply it now if this replica drives its car."""
        if command.group in self.leases():
            self.wake()

    def step(self) -> int:
        """Apply what is pending in every held group; returns how many commands were applied."""
        done = 0
        leases = self.leases()
        for group, commands in sorted(self.mailbox.pending(sorted(leases)).items()):
            for command in commands:
                if not self._apply(leases[group], command):
                    break
                done += 1
        self.applied += done
        return done

    def _apply(self, lease: GroupLease, command: CarCommand) -> bool:
        """One command in its own fenced transaction; False when it stays in the mailbox for later: the
        car is not driven here (its group is changing hands: its next driver applies it), the group is no
        longer ours, or the command was applied already."""
        start = self.simulator.position(command.car_id)
        if start is None:
            return False
        change, what = self._change(command, start)
        try:
            planned = self.simulator.plan(command.car_id, change)
        except UnknownCar:  # dropped since: the group was just lost
            return False
        uow = self.unit_of_work()
        uow.fence(lease)
        uow.commands.done(command)
        if planned is not None:
            uow.cars.save(planned)
        try:
            uow.commit()
        except Conflict as exc:
            log.info("command %s for car %s not applied here (%s)", command.kind, command.car_id, exc.labels)
            return False
        if planned is None:
            log.info("car %s %s: nothing to change", command.car_id, what)
        else:
            self.simulator.obey(command.car_id, change, planned.car, what)
        return True

    def _change(self, command: CarCommand, start: Point) -> tuple[Command, str]:
        """The command as a function of the car (legs routed from ``start``, where the car is now)."""
        ride = command.ride_id
        if command.kind is CommandKind.ASSIGN:
            assert ride is not None and command.pickup is not None and command.dropoff is not None
            assignment = Assignment(
                ride_id=ride,
                pickup=command.pickup,
                dropoff=command.dropoff,
                to_pickup=self.roads.leg(start, command.pickup),
                to_dropoff=self.roads.leg(command.pickup, command.dropoff),
                boarding_s=self.boarding_s,
                sequence=command.sequence,
            )
            return (lambda car: car.assign(assignment)), f"assigned to {ride}"
        if command.kind is CommandKind.RELEASE:
            assert ride is not None
            return (lambda car: car.release(ride)), f"released from {ride}"
        if command.kind is CommandKind.OUT_OF_SERVICE:
            return (lambda car: car.take_out_of_service()), "out of service"
        if command.kind is CommandKind.STALL:
            return (lambda car: car.stall()), "stalled"
        return (lambda car: car.unstall()), "unstalled"


# --- the groups this replica drives ---------------------------------------------------------------------
def cars_as_stored(seed: int, fleet: Sequence[FleetCar], stored: Sequence[Snapshot]) -> list[Car]:
    """The cars as their rows hold them; a car without a row IDLE at its seeded position."""
    rows = {snapshot.car.car_id: snapshot.car for snapshot in stored}
    return [
        rows.get(c.car_id) or Car(c.car_id, c.lat, c.lon, battery=initial_battery(seed, c.car_id))
        for c in fleet
    ]


@dataclass
class FleetGroups:
    """``LeasedKeys``' callbacks: a gained group's cars are read from their rows and driven on from there;
    a lost group's cars are saved (fenced: refused if another replica holds the group already) and
    dropped. ``leases`` is what this replica holds now, for the applier and the saver."""

    simulator: CarSimulator
    store: CarStore
    fleet: Mapping[str, FleetCar]
    seed: int
    leases: dict[str, GroupLease] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def held(self) -> dict[str, GroupLease]:
        with self._lock:
            return dict(self.leases)

    def lease_of(self, car_id: str) -> GroupLease | None:
        with self._lock:
            return self.leases.get(car_group(car_id))

    def on_gained(self, lease: GroupLease) -> None:
        members = [car for car in self.fleet.values() if car_group(car.car_id) == lease.key]
        cars = cars_as_stored(self.seed, members, self.store.load(c.car_id for c in members))
        self.simulator.locked(lambda sim: sim.add(cars))
        with self._lock:
            self.leases[lease.key] = lease
        riding = sum(1 for car in cars if car.ride_id is not None)
        log.info(
            "group %s gained (token %d): %d cars, %d with a ride", lease.key, lease.token, len(cars), riding
        )

    def on_lost(self, group: str) -> None:
        with self._lock:
            lease = self.leases.pop(group, None)
        members = {cid for cid in self.fleet if car_group(cid) == group}
        due = self.simulator.locked(lambda sim: sim.due_saves(math.inf, 0.0))
        saved = self._save_last(lease, [s for s in due if s.car.car_id in members]) if lease else 0
        self.simulator.locked(lambda sim: sim.drop(members))
        log.info("group %s lost: %d cars no longer driven here, %d saved", group, len(members), saved)

    def _save_last(self, lease: GroupLease, due: list[Snapshot]) -> int:
        """Save the group's cars once more before they are dropped (refused once another replica took
        the group: then its rows stay as last saved, which its new driver has read)."""
        saved = 0
        try:
            for snapshot in due:
                saved += self.store.save_progress(snapshot, lease)
        except Exception:  # Fenced, or the store does not answer
            log.info("group %s: the last progress of its cars was not saved", lease.key, exc_info=True)
        return saved


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
    change, or ``every_s`` of progress), one conditional write per car fenced by its group's lease, in its
    own thread: a slow or unreachable store never holds up the fleet, and a car that could not be saved is
    due again at the next tick with its newest state. When the service stops, every progressing car is
    saved once more."""

    simulator: CarSimulator
    store: CarStore
    lease_of: Callable[[str], GroupLease | None]
    every_s: float
    tick_s: float = SAVE_TICK_S
    clock: Callable[[], float] = time.time
    written: int = 0
    stale: int = 0  # a newer command's row was there: nothing written
    fenced: int = 0  # the group was taken over: nothing written (its cars are dropped when the loss is seen)
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
        lease = self.lease_of(snapshot.car.car_id)
        if lease is None:
            self.fenced += 1  # being dropped: the group is no longer held
            return
        try:
            written = self.store.save_progress(snapshot, lease)
        except Fenced:
            self.fenced += 1
            return
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
        return {"written": self.written, "stale": self.stale, "fenced": self.fenced, "failed": self.failed}
