"""Two car-simulator replicas sharing the fleet through group leases (``LeasedKeys`` on DynamoDB in
in-process moto, a fake clock): a car is never driven by two replicas and every car is driven; a dead
replica's groups move to the survivor, whose cars go on from their saved rows; a command consumed by a
replica that does not drive the car is applied by the one that does, in order, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from car_simulator_fakes import FakeKinesis, StraightRoads

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.car import CarPhase
from acr.catalog.fleet import CarAssigned, CarReleased
from acr.consumer import MessageHandler, idempotent
from acr.envelope import CloudEvent
from acr.fleet import FleetCar
from acr.leases import LeasedKeys, LeaseTable
from acr.runtime import Messaging
from acr.unit_of_work import Duplicate
from acr_testkit.aws import in_process_messaging
from car_simulator.adapters.dynamo import DynamoCarStore, DynamoCarUnitOfWork, DynamoMailbox
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.api import SimulatorState, get_car, list_cars, stall_car
from car_simulator.domain import GROUPS, car_group
from car_simulator.handlers import CarSimulator, CommandApplier, Fleet, FleetGroups, ProgressSaver, handlers
from car_simulator.simulation import Simulation
from car_simulator.topology import TOPOLOGY

LEASE_S = 10.0
SPEED = 10.0
FLEET = {f"car-{i:05d}": FleetCar(f"car-{i:05d}", 60.16 + i / 1000, 24.93) for i in range(1, 41)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Replica:
    """One car-simulator process: its group leases, the cars of its groups, its consumer and applier."""

    def __init__(self, name: str, messaging: Messaging, clock: Clock) -> None:
        dynamodb = messaging.dynamodb
        self.clock = clock
        self.leases = LeaseTable(dynamodb, TOPOLOGY.leases_table, name, LEASE_S, clock=clock)
        self.store = DynamoCarStore(dynamodb, self.leases)
        simulator = CarSimulator(Simulation([], SPEED, wall_start=clock.now, sim_start_s=clock.now * SPEED))
        self.groups = FleetGroups(simulator, self.store, FLEET, seed=7)
        self.leased = LeasedKeys(self.leases, lambda: GROUPS, self.groups.on_gained, self.groups.on_lost)

        def unit_of_work() -> DynamoCarUnitOfWork:
            return DynamoCarUnitOfWork(messaging.unit_of_work(), self.leases)

        mailbox = DynamoMailbox(dynamodb)
        self.applier = CommandApplier(
            simulator, mailbox, unit_of_work, self.groups.held, StraightRoads(10.0), 60
        )
        self.consume: MessageHandler = idempotent(unit_of_work, handlers(fleet=Fleet(FLEET)))
        self.saver = ProgressSaver(simulator, self.store, self.groups.lease_of, 15.0, clock=clock)

    @property
    def simulator(self) -> CarSimulator:
        return self.groups.simulator

    def driven(self) -> set[str]:
        return self.simulator.locked(lambda sim: set(sim.cars))

    def deliver(self, data: CarAssigned | CarReleased, sequence: int | None = None) -> CloudEvent:
        event = catalog.record(data, subject=data.ride_id, sequence=sequence)
        self.consume(event, data)
        return event

    def run(self, seconds: float) -> None:
        """Drive the cars for ``seconds`` of the shared fake clock (0.25 s ticks, a save every second)."""
        for step in range(round(seconds / 0.25)):
            self.clock.now += 0.25
            self.simulator.tick(self.clock.now)
            if step % 4 == 3:
                self.saver.attempt()


@pytest.fixture
def replicas() -> Iterator[tuple[Replica, Replica]]:
    clock = Clock()
    with in_process_messaging(TOPOLOGY) as messaging:
        yield Replica("replica-a", messaging, clock), Replica("replica-b", messaging, clock)


def _assigned(car_id: str, ride: str) -> CarAssigned:
    car = FLEET[car_id]
    return CarAssigned(
        ride_id=ride,
        car_id=car_id,
        car_lat=car.lat,
        car_lon=car.lon,
        pickup=Place(label="P", lat=car.lat + 0.05, lon=car.lon),  # 5.5 km: 550 s at 10 m/s
        dropoff=Place(label="D", lat=car.lat + 0.1, lon=car.lon),
        pickup_eta_seconds=300,
        assigned_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _split(a: Replica, b: Replica) -> None:
    """Lease rounds until both replicas hold their share, checking at every round that no car is driven
    twice."""
    for _ in range(4):
        for replica in (a, b):
            replica.leased.tick()
            assert not a.driven() & b.driven()
    assert (len(a.groups.held()), len(b.groups.held())) == (8, 8)


def test_two_replicas_never_drive_one_car_and_together_drive_the_whole_fleet(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    a.leased.tick()  # alone: it takes every group
    assert a.driven() == set(FLEET) and b.driven() == set()
    _split(a, b)  # b shows up: a releases half the groups, b takes them
    assert not a.driven() & b.driven() and a.driven() | b.driven() == set(FLEET)
    assert {car_group(cid) for cid in b.driven()} <= set(b.groups.held())
    owners = {lease.key: lease.owner for lease in a.leases.all("cars#")}
    assert all(owners[car_group(cid)] == "replica-b" for cid in b.driven())


def test_a_dead_replicas_groups_move_to_the_survivor_and_its_cars_go_on_from_their_rows(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    _split(a, b)
    car_id = min(a.driven())
    a.deliver(_assigned(car_id, "ride-1"))
    a.applier.step()
    a.run(20.0)  # saved at 15 s (the pace); then replica a dies between two saves
    [saved] = a.store.load([car_id])
    driven = a.simulator.locked(lambda sim: sim.car(car_id).travelled_m)
    assert 0 < saved.car.travelled_m < driven

    a.clock.now += LEASE_S + 1  # a renews nothing: its heartbeat and leases expire
    b.leased.tick()
    assert b.driven() == set(FLEET) and len(b.groups.held()) == len(GROUPS)
    moved = b.simulator.locked(lambda sim: sim.car(car_id))
    assert (moved.ride_id, moved.phase, moved.travelled_m) == (
        "ride-1",
        CarPhase.TO_PICKUP,
        saved.car.travelled_m,
    )
    assert moved.version == saved.car.version == 1

    a.run(5.0)  # a was only paused: it still drives its cars, but cannot write over b's
    assert a.saver.fenced >= 1 and a.store.load([car_id]) == [saved]
    b.run(16.0)
    [after] = b.store.load([car_id])
    assert after.car.travelled_m > saved.car.travelled_m  # the survivor saves it from then on


def test_a_command_consumed_by_another_replica_is_applied_by_the_cars_driver_in_order_once(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    _split(a, b)
    car_id = min(a.driven())
    first = b.deliver(_assigned(car_id, "ride-1"))  # consumed by b, which does not drive the car
    b.deliver(CarReleased(ride_id="ride-1", car_id=car_id, reason="RIDER_CANCELLED"))
    b.deliver(_assigned(car_id, "ride-2"))
    assert b.applier.step() == 0  # not b's to apply
    assert a.simulator.locked(lambda sim: sim.car(car_id).ride_id) is None
    assert a.applier.step() == 3
    car = a.simulator.locked(lambda sim: sim.car(car_id))
    assert (car.ride_id, list(car.closed_rides), car.version) == ("ride-2", ["ride-1"], 3)
    with pytest.raises(Duplicate):  # a redelivery, to either replica, posts nothing
        a.consume(first.resent(), catalog.decode(first))
    assert a.applier.step() == 0 and DynamoMailbox(a.leases.dynamodb).pending(GROUPS) == {}
    [row] = a.store.load([car_id])
    assert (row.car.ride_id, row.car.version) == ("ride-2", 3)


def test_any_replica_answers_for_the_whole_fleet_and_posts_a_stall_to_the_cars_driver(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    _split(a, b)
    car_id = min(a.driven())
    a.deliver(_assigned(car_id, "ride-1"))
    a.applier.step()
    asked = SimulatorState(  # replica b's routes
        simulator=b.simulator,
        telemetry=KinesisPublisher(FakeKinesis(), "acr-car-telemetry", TelemetryBuffer()),  # type: ignore[arg-type]
        saver=b.saver,
        groups=b.groups,
        applier=b.applier,
        store=b.store,
        mailbox=DynamoMailbox(b.leases.dynamodb),
        fleet=Fleet(FLEET, posted=b.applier.posted),
    )
    cars = {car["carId"]: car for car in list_cars(asked)["cars"]}
    assert set(cars) == set(FLEET)
    assert (cars[car_id]["rideId"], cars[car_id]["phase"]) == ("ride-1", "TO_PICKUP")  # b reads a's row
    stalled = stall_car(car_id, asked)
    assert b.applier.step() == 0 and a.applier.step() == 1  # b posted it; a, the car's driver, applied it
    assert a.simulator.locked(lambda sim: sim.car(car_id).phase) is CarPhase.STALLED
    assert get_car(car_id, asked)["phase"] == "STALLED" and stalled["command"] == "STALL"


def test_a_command_pending_while_its_group_changes_hands_is_applied_by_the_next_driver(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    _split(a, b)
    car_id = min(a.driven())
    group = car_group(car_id)
    held = a.groups.held()
    b.deliver(_assigned(car_id, "ride-1"))
    a.groups.on_lost(group)  # a gives the group up (its lease is still a's until b takes it) ...
    a.applier.leases = lambda: held  # ... while its applier works from the leases it read before
    assert a.applier.step() == 0 and len(DynamoMailbox(a.leases.dynamodb).pending([group])[group]) == 1
    a.leases.release(held[group])
    taken = b.leases.acquire(group)
    assert taken is not None and taken.token == held[group].token + 1
    b.groups.on_gained(taken)
    assert b.applier.step() == 1
    assert b.simulator.locked(lambda sim: sim.car(car_id).ride_id) == "ride-1"


def test_an_assignment_carries_its_sequence_to_the_car_which_drops_one_not_newer(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    _split(a, b)
    car_id = min(a.driven())
    b.deliver(_assigned(car_id, "ride-1"), sequence=2)  # through b's consumer and the group's mailbox
    assert a.applier.step() == 1
    car = a.simulator.locked(lambda sim: sim.car(car_id))
    assert car.assignment is not None and (car.assignment.sequence, car.version) == (2, 1)
    b.deliver(_assigned(car_id, "ride-1"), sequence=1)  # an older dispatch of the ride, a new message
    assert a.applier.step() == 1  # taken from the mailbox, changing nothing
    car = a.simulator.locked(lambda sim: sim.car(car_id))
    assert car.assignment is not None and (car.assignment.sequence, car.version) == (2, 1)
    [row] = a.store.load([car_id])
    assert row.car.assignment is not None and row.car.assignment.sequence == 2  # kept on the car's row
