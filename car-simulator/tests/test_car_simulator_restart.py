"""Restart-safe cars: commands posted with their marker and stored when applied, progress saved on phase
changes and at a bounded pace, a restarted fleet that goes on from its rows (fake clocks, in-memory store)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from car_simulator_fakes import MemoryCarStore, StraightRoads, lease

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.car import CarPhase
from acr.catalog.fleet import CarAssigned, CarReleased
from acr.consumer import MessageHandler, idempotent
from acr.envelope import CloudEvent
from acr.fleet import FleetCar
from acr.unit_of_work import Duplicate
from car_simulator.domain import GROUPS, Assignment, Car, Leg, Point, Snapshot, car_group
from car_simulator.handlers import CarSimulator, CommandApplier, Fleet, FleetGroups, ProgressSaver, handlers
from car_simulator.simulation import Simulation

M_PER_DEG_LAT = 111_195.0
SPEED = 30.0  # simulated seconds per wall second
EVERY_S = 15.0  # wall seconds between two saves of a progressing car


def north(point: Point, meters: float) -> Point:
    return Point(point.lat + meters / M_PER_DEG_LAT, point.lon)


def _assigned(car: Car, ride: str, pickup_m: float = 3_000, trip_m: float = 6_000) -> CarAssigned:
    pickup = north(car.position, pickup_m)
    dropoff = north(pickup, trip_m)
    return CarAssigned(
        ride_id=ride,
        car_id=car.car_id,
        car_lat=car.lat,
        car_lon=car.lon,
        pickup=Place(label="P", lat=pickup.lat, lon=pickup.lon),
        dropoff=Place(label="D", lat=dropoff.lat, lon=dropoff.lon),
        pickup_eta_seconds=300,
        assigned_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def driving_all(store: MemoryCarStore, fleet: dict[str, FleetCar], wall: float) -> FleetGroups:
    """A replica on a fake clock at ``wall`` that gained every group (token 1)."""
    simulator = CarSimulator(Simulation([], SPEED, wall_start=wall, sim_start_s=wall * SPEED))
    groups = FleetGroups(simulator, store, fleet, seed=7)
    for group in GROUPS:
        groups.on_gained(lease(group))
    return groups


@dataclass
class World:
    """A fleet on a fake wall clock: ticks every 0.25 s, the saver every second, commands through the
    kernel's idempotent consumer into the mailboxes, applied at once by the replica driving every group."""

    cars: int
    store: MemoryCarStore = field(default_factory=MemoryCarStore)
    wall: float = 0.0

    def __post_init__(self) -> None:
        self.fleet = {
            f"car-{i:05d}": FleetCar(f"car-{i:05d}", 60.0 + i / 100, 24.9) for i in range(1, self.cars + 1)
        }
        self.groups = driving_all(self.store, self.fleet, self.wall)
        self.simulator = self.groups.simulator
        self.applier = CommandApplier(
            self.simulator, self.store, self.store.unit_of_work, self.groups.held, StraightRoads(10.0), 60
        )
        self.consume: MessageHandler = idempotent(self.store.unit_of_work, handlers(fleet=Fleet(self.fleet)))
        self.saver = ProgressSaver(
            self.simulator, self.store, self.groups.lease_of, EVERY_S, clock=lambda: self.wall
        )

    @property
    def sim(self) -> Simulation:
        return self.simulator.simulation

    def deliver(self, data: CarAssigned | CarReleased, subject: str) -> CloudEvent:
        event = catalog.record(data, subject=subject, sequence=1)
        self.consume(event, data)
        self.applier.step()
        return event

    def run(self, seconds: float) -> Iterator[float]:
        """Advance the wall clock tick by tick (yielding each moment); the saver runs every second."""
        for _ in range(round(seconds / 0.25)):
            self.wall += 0.25
            self.simulator.tick(self.wall)
            if self.wall % 1.0 == 0:
                self.saver.attempt()
            yield self.wall


def test_an_assignment_is_stored_with_its_marker_and_a_redelivery_changes_nothing() -> None:
    world = World(cars=1)
    car = world.sim.car("car-00001")
    event = world.deliver(_assigned(car, "ride-1"), "ride-1")
    [row] = world.store.load_all()
    assert (row.car.version, row.car.ride_id, row.car.phase) == (1, "ride-1", CarPhase.TO_PICKUP)
    assert row.car.assignment == car.assignment and car.version == 1
    assert world.saver.step() == 0  # what the command stored is what the car does: nothing to save
    list(world.run(5.0))
    with pytest.raises(Duplicate):
        world.consume(event.resent(), catalog.decode(event))
    assert world.store.tables.cars["car-00001"].car.version == 1 and car.travelled_m > 0


def test_a_release_and_a_late_assignment_of_the_released_ride_are_stored_too() -> None:
    world = World(cars=1)
    car = world.sim.car("car-00001")
    late = _assigned(car, "ride-1")
    world.deliver(CarReleased(ride_id="ride-1", car_id="car-00001", reason="RIDER_CANCELLED"), "ride-1")
    [row] = (
        world.store.load_all()
    )  # the car was idle, but it must refuse ride-1 from now on, restarts included
    assert (row.car.version, row.car.phase, list(row.car.closed_rides)) == (1, CarPhase.IDLE, ["ride-1"])
    world.deliver(late, "ride-1")
    # two messages, each posted with its marker and applied: the late assignment only left the mailbox
    assert world.store.tables.commits == 4 and world.store.tables.row_writes == 1
    assert world.store.load_all() == [row] and world.store.pending(GROUPS) == {}
    assert car.phase is CarPhase.IDLE


def test_a_phase_change_is_saved_at_once_and_a_moving_car_every_fifteen_wall_seconds() -> None:
    world = World(cars=2)
    car = world.sim.car("car-00001")
    world.deliver(_assigned(car, "ride-1", pickup_m=30_000), "ride-1")  # 3000 s = 100 wall s to the pickup
    saves: list[tuple[float, float]] = []
    for wall in world.run(60.0):
        row = world.store.tables.cars["car-00001"]
        if not saves or row.sim_time_s != saves[-1][1]:
            saves.append((wall, row.sim_time_s))
    assert [wall for wall, _ in saves] == [0.25, 15.0, 30.0, 45.0, 60.0]  # the command's row, then the pace
    assert world.store.tables.cars["car-00001"].car.travelled_m == pytest.approx(car.travelled_m)
    assert "car-00002" not in world.store.tables.cars  # an idle car is never written
    world.sim.stall("car-00001")
    world.saver.step()
    assert world.store.tables.cars["car-00001"].car.phase is CarPhase.STALLED  # a stall is a phase change
    before = world.store.tables.progress_writes
    list(world.run(60.0))
    assert world.store.tables.progress_writes == before  # a stalled car does not move: nothing to save


def test_an_unreachable_store_holds_up_no_car_and_the_newest_state_is_saved_when_it_answers() -> None:
    world = World(cars=1)
    car = world.sim.car("car-00001")
    world.deliver(_assigned(car, "ride-1", pickup_m=30_000), "ride-1")
    world.store.tables.unreachable = True
    list(world.run(40.0))
    assert world.saver.failed == 26  # due from 15 s on, tried again every second
    assert car.travelled_m == pytest.approx(40 * SPEED * 10.0)  # and the car drove on all along
    world.store.tables.unreachable = False
    list(world.run(1.0))
    assert world.store.tables.cars["car-00001"].car.travelled_m == pytest.approx(car.travelled_m)


def test_a_stopping_service_saves_every_progressing_car_once_more() -> None:
    world = World(cars=2)
    car = world.sim.car("car-00001")
    world.deliver(_assigned(car, "ride-1", pickup_m=30_000), "ride-1")
    list(world.run(5.0))  # between two saves at the pace
    assert world.store.tables.cars["car-00001"].car.travelled_m < car.travelled_m
    stop = threading.Event()
    stop.set()
    world.saver.run(stop)
    assert world.store.tables.cars["car-00001"].car.travelled_m == car.travelled_m
    assert "car-00002" not in world.store.tables.cars


def test_a_progress_save_never_overwrites_the_row_of_a_newer_command() -> None:
    world = World(cars=1)
    car = world.sim.car("car-00001")
    world.deliver(_assigned(car, "ride-1", pickup_m=30_000), "ride-1")
    list(world.run(5.0))
    [stale] = world.sim.due_saves(world.wall, every_s=0.0)  # taken before the release commits ...
    world.deliver(CarReleased(ride_id="ride-1", car_id="car-00001", reason="RIDER_CANCELLED"), "ride-1")
    assert not world.store.save_progress(
        stale, lease(car_group("car-00001"))
    )  # ... written after it: refused
    [row] = world.store.load_all()
    assert (row.car.version, row.car.phase, row.car.ride_id) == (2, CarPhase.IDLE, None)


def test_a_restarted_fleet_goes_on_from_its_rows_and_reports_every_car_at_once() -> None:
    world = World(cars=3)
    one, two = world.sim.car("car-00001"), world.sim.car("car-00002")
    world.deliver(_assigned(one, "ride-1", pickup_m=30_000), "ride-1")
    world.deliver(_assigned(two, "ride-2", pickup_m=300, trip_m=30_000), "ride-2")
    list(world.run(20.0))  # car 1 is 6 km along its 30 km to the pickup; car 2 is on its trip
    saved = {s.car.car_id: s.car for s in world.store.load_all()}  # as of the save at 15 s
    list(world.run(8.0))  # then the process is killed: what it did since the last save is lost
    assert one.travelled_m > saved["car-00001"].travelled_m
    fleet = {f"car-{i:05d}": FleetCar(f"car-{i:05d}", 59.0, 24.0) for i in (1, 2, 3)}
    restarted = driving_all(world.store, fleet, world.wall).simulator.simulation
    again = restarted.car("car-00001")
    assert (again.phase, again.ride_id, again.travelled_m) == (
        CarPhase.TO_PICKUP,
        "ride-1",
        saved["car-00001"].travelled_m,
    )
    assert again.position == saved["car-00001"].position and again.target == one.target  # not at 59.0
    trip = restarted.car("car-00002")
    assert (trip.phase, trip.ride_id, trip.leg) == (CarPhase.TO_DESTINATION, "ride-2", two.leg)
    fresh = restarted.car("car-00003")
    assert (fresh.phase, fresh.lat, fresh.lon) == (CarPhase.IDLE, 59.0, 24.0)  # no row: the seeded place
    first = restarted.tick(restarted._wall + 0.25)
    assert {r.telemetry.car_id for r in first if r.essential} == {"car-00001", "car-00002", "car-00003"}
    assert restarted.due_saves(restarted._wall, EVERY_S) == []  # as stored: nothing to save yet


def test_a_car_saved_boarding_boards_what_was_left_then_drives_the_trip() -> None:
    car = Car("car-00001", 60.0, 24.9)
    pickup, dropoff = Point(60.001, 24.9), Point(60.01, 24.9)
    car.assign(
        Assignment(
            "r1",
            pickup,
            dropoff,
            Leg([(60.0, 24.9), (60.001, 24.9)], 10),
            Leg([(60.001, 24.9), (60.01, 24.9)], 100),
            60,
        )
    )
    car.advance(40.0, 0.0)  # 30 s of its 60 s boarding
    store = MemoryCarStore()
    store.save_progress(Snapshot(car, 40.0), lease(car_group("car-00001")))
    [row] = store.load_all()
    restored = row.car
    assert (restored.phase, restored.boarding_left_s, restored.leg, restored.target) == (
        CarPhase.BOARDING,
        30.0,
        None,
        None,
    )
    changes = restored.advance(200.0, 1000.0)
    assert [(c.phase, c.sim_time_s) for c in changes] == [
        (CarPhase.TO_DESTINATION, 1030.0),
        (CarPhase.TO_DESTINATION, 1130.0),
        (CarPhase.IDLE, 1130.0),
    ]


def test_with_100_moving_cars_each_car_is_written_about_four_times_a_minute() -> None:
    world = World(cars=100)
    for car in list(world.sim.cars.values()):
        world.deliver(_assigned(car, f"ride-{car.car_id}", pickup_m=300_000), f"ride-{car.car_id}")
    commands = world.store.tables.row_writes
    list(world.run(300.0))  # five wall minutes, every car driving all along
    per_car_minute = world.store.tables.progress_writes / 100 / 5
    assert commands == 100 and 3.9 <= per_car_minute <= 4.1  # one write every 15 s, never one per tick


def test_with_100_cars_riding_one_ride_after_another_a_car_is_written_about_eight_times_a_minute() -> None:
    world = World(cars=100)
    rides = 0
    for _ in world.run(300.0):
        for car in list(world.sim.cars.values()):
            if car.ride_id is None:  # 300 s to the pickup, 60 s boarding, 600 s trip: 32 wall s a ride
                rides += 1
                world.deliver(_assigned(car, f"ride-{rides}"), f"ride-{rides}")
    writes = world.store.tables.progress_writes + world.store.tables.row_writes
    per_car_minute = writes / 100 / 5
    # a ride: its command's row, BOARDING, TO_DESTINATION, one save at the pace on the trip (the arrival's
    # IDLE is in the next command's row): the phase changes, not the pace, make most of the writes
    assert 900 <= rides <= 1000 and 7.0 <= per_car_minute <= 9.0
