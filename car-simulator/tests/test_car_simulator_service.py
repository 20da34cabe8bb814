"""The fleet events through the kernel's idempotent consumer and the command applier, and the app wired
with in-memory adapters and a lease table on in-process moto (its loops running in the lifespan)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from car_simulator_fakes import FakeKinesis, MemoryCarStore, StraightRoads, lease
from fastapi.testclient import TestClient
from moto import mock_aws

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.car import CarPhase, CarTelemetry
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.consumer import MessageHandler, idempotent
from acr.envelope import CloudEvent
from acr.fleet import FleetCar
from acr.leases import LeaseTable
from acr.service import Runtime
from acr.stream import decode_record
from acr.topology import discover, lease_table
from acr.topology.apply import Clients, apply
from acr.unit_of_work import Duplicate
from acr_testkit.aws import client, in_process_tables
from acr_testkit.identity import settings_for, signed
from acr_testkit.messaging import FakeMessaging
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.api import SimulatorState
from car_simulator.bootstrap import SERVICE, Adapters, assemble
from car_simulator.domain import GROUPS, car_group
from car_simulator.handlers import CarSimulator, CommandApplier, Fleet, FleetGroups, SimulationLoop, handlers
from car_simulator.simulation import Simulation
from car_simulator.topology import TOPOLOGY

PICKUP = Place(label="1 Harbour Street", lat=60.165, lon=24.94)
DROPOFF = Place(label="9 Station Road", lat=60.17, lon=24.93)
FLEET = [FleetCar("car-00001", 60.16, 24.93), FleetCar("car-00002", 60.161, 24.931)]


@pytest.fixture
def store() -> MemoryCarStore:
    return MemoryCarStore()


@pytest.fixture
def groups(store: MemoryCarStore) -> FleetGroups:
    """One replica driving every group."""
    simulator = CarSimulator(Simulation([], sim_speed=10, wall_start=0.0))
    driving = FleetGroups(simulator, store, {c.car_id: c for c in FLEET}, seed=7)
    for group in GROUPS:
        driving.on_gained(lease(group))
    return driving


@pytest.fixture
def simulator(groups: FleetGroups) -> CarSimulator:
    return groups.simulator


@pytest.fixture
def consumer(groups: FleetGroups, store: MemoryCarStore) -> MessageHandler:
    """The events consumer, then the driver applying what it posted."""
    applier = CommandApplier(
        groups.simulator, store, store.unit_of_work, groups.held, StraightRoads(10.0), 60
    )
    consume = idempotent(store.unit_of_work, handlers(fleet=Fleet(groups.fleet)))

    def consume_and_apply(event: CloudEvent, data: Any) -> None:
        consume(event, data)
        applier.step()

    return consume_and_apply


def _assigned_data(car: str = "car-00001", ride: str = "ride-1", replaces: str | None = None) -> CarAssigned:
    return CarAssigned(
        ride_id=ride,
        car_id=car,
        car_lat=60.16,
        car_lon=24.93,
        pickup=PICKUP,
        dropoff=DROPOFF,
        pickup_eta_seconds=100,
        assigned_at=datetime(2026, 1, 1, tzinfo=UTC),
        replaces_car_id=replaces,
    )


def _assigned(car: str = "car-00001", ride: str = "ride-1", replaces: str | None = None) -> CloudEvent:
    return catalog.record(_assigned_data(car, ride, replaces), subject=ride, sequence=1)


def _deliver(consumer: MessageHandler, event: CloudEvent) -> None:
    consumer(event, catalog.decode(event))


def test_car_assigned_starts_the_drive_and_a_redelivery_does_not_restart_it(
    simulator: CarSimulator, consumer: MessageHandler
) -> None:
    event = _assigned()
    _deliver(consumer, event)
    car = simulator.simulation.car("car-00001")
    assert (car.phase, car.ride_id) == (CarPhase.TO_PICKUP, "ride-1")
    simulator.tick(2.0)  # 1 wall second of progress = 10 simulated seconds
    odometer = car.odometer_m
    assert odometer == pytest.approx(100.0, rel=1e-6)
    with pytest.raises(Duplicate):
        _deliver(consumer, event)
    assert car.odometer_m == odometer and car.phase is CarPhase.TO_PICKUP and car.travelled_m == odometer


def test_released_and_out_of_service_cars_stop_where_they_are(
    simulator: CarSimulator, consumer: MessageHandler
) -> None:
    _deliver(consumer, _assigned())
    _deliver(consumer, _assigned("car-00002", "ride-2"))
    simulator.tick(1.0)
    _deliver(
        consumer,
        catalog.record(
            CarReleased(ride_id="ride-1", car_id="car-00001", reason="RIDER_CANCELLED"), subject="ride-1"
        ),
    )
    simulator.simulation.stall("car-00002")
    _deliver(
        consumer, catalog.record(CarOutOfService(car_id="car-00002", reason="stalled"), subject="car-00002")
    )
    one, two = simulator.simulation.car("car-00001"), simulator.simulation.car("car-00002")
    assert (one.phase, one.ride_id, two.phase, two.ride_id) == (CarPhase.IDLE, None, CarPhase.STALLED, None)
    where = (one.position, two.position)
    simulator.tick(5.0)
    assert (one.position, two.position) == where


def test_an_event_for_an_unknown_car_is_consumed_without_effect(
    simulator: CarSimulator, consumer: MessageHandler
) -> None:
    _deliver(consumer, _assigned("car-99999"))
    assert all(c.phase is CarPhase.IDLE for c in simulator.simulation.cars.values())


def test_the_loop_hands_every_report_to_the_publisher_queue(
    simulator: CarSimulator, consumer: MessageHandler
) -> None:
    clock = [0.0]
    buffer = TelemetryBuffer()
    loop = SimulationLoop(simulator, buffer, clock=lambda: clock[0])
    _deliver(consumer, _assigned())
    clock[0] = 0.25
    assert loop.step() == 3  # each car as its group was gained, then car 1's assignment
    reports = buffer.take(wait_s=0) + buffer.take(wait_s=0)  # at most one record per car in a batch
    assert [r.telemetry.phase for r in reports if r.telemetry.car_id == "car-00001"] == [
        CarPhase.IDLE,
        CarPhase.TO_PICKUP,
    ]


class Wired:
    """The app wired with fakes: fleet events delivered by hand, telemetry into a fake Kinesis."""

    def __init__(
        self,
        sim_speed: float,
        boarding_s: float,
        store: MemoryCarStore | None = None,
        save_every_s: float = 15,
    ) -> None:
        self.messaging, self.kinesis = FakeMessaging(), FakeKinesis()
        self.settings = settings_for(
            "car-simulator",
            sim_speed=sim_speed,
            boarding_s=boarding_s,
            car_save_every_s=save_every_s,
            replica="replica-1",
        )
        self.store = store or MemoryCarStore()

    def wire(self, runtime: Runtime) -> SimulatorState:
        publisher = KinesisPublisher(self.kinesis, "acr-car-telemetry", TelemetryBuffer())
        leases = LeaseTable(
            self.dynamodb, TOPOLOGY.leases_table, self.settings.replica, self.settings.lease_s
        )
        adapters = Adapters(
            consumers=self.messaging,
            unit_of_work=self.store.unit_of_work,
            cars=self.store,
            mailbox=self.store,
            leases=leases,
            roads=StraightRoads(10.0),
            fleet=FLEET,
            telemetry=publisher,
        )
        return assemble(runtime, adapters)

    @contextmanager
    def client(self) -> Iterator[TestClient]:
        """The app running, once it drives every group (its lease table on in-process moto)."""
        with in_process_tables([lease_table(TOPOLOGY.leases_table)]) as self.dynamodb:
            app = SERVICE.app(settings=self.settings, wire=self.wire)
            with signed(TestClient(app), "bff", "car-simulator") as client:
                assert _until(lambda: client.get("/v1/ops/telemetry").json()["carsDrivenHere"] == len(FLEET))
                yield client

    def telemetry(self, car_id: str) -> list[CarTelemetry]:
        """The records of ``car_id`` as they reached the stream."""
        records = [decode_record({**r, "SequenceNumber": "0"}) for r in self.kinesis.delivered]
        telemetry = [r.data for r in records if r is not None and isinstance(r.data, CarTelemetry)]
        return [t for t in telemetry if t.car_id == car_id]

    def phases(self, car_id: str) -> list[str]:
        """The phase changes of ``car_id`` as they reached the stream."""
        phases = [t.phase for t in self.telemetry(car_id)]
        return [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]


def _until(condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_http_cars_stall_unstall_and_telemetry_stats() -> None:
    wired = Wired(sim_speed=10, boarding_s=60)  # about 8 wall seconds to the pickup
    with wired.client() as client:
        wired.messaging.deliver("events", _assigned_data(), subject="ride-1", sequence=1)
        assert _until(lambda: client.get("/v1/cars/car-00001").json()["rideId"] == "ride-1")
        cars = client.get("/v1/cars").json()["cars"]
        assert [c["carId"] for c in cars] == ["car-00001", "car-00002"]
        assert set(cars[0]) == {"carId", "phase", "rideId", "lat", "lon", "speedKmh"}
        assert (cars[0]["phase"], cars[0]["rideId"], cars[0]["speedKmh"]) == ("TO_PICKUP", "ride-1", 36.0)

        posted = client.post(
            "/v1/ops/cars/car-00001/stall"
        )  # posted to the car's mailbox, applied by its driver
        assert posted.status_code == 202 and posted.json()["command"] == "STALL"
        stalled = _until(
            lambda: (car := client.get("/v1/cars/car-00001").json())["phase"] == "STALLED" and car
        )
        assert (stalled["phase"], stalled["rideId"], stalled["speedKmh"]) == ("STALLED", "ride-1", 0.0)
        assert stalled["target"] == {"lat": PICKUP.lat, "lon": PICKUP.lon}
        assert client.post("/v1/ops/cars/car-00001/unstall").status_code == 202
        assert _until(lambda: client.get("/v1/cars/car-00001").json()["phase"] == "TO_PICKUP")

        for path in ("/v1/cars/car-42", "/v1/ops/cars/car-42/stall", "/v1/ops/cars/car-42/unstall"):
            response = client.get(path) if path.endswith("42") else client.post(path)
            assert response.status_code == 404 and response.json()["error"]["code"] == "car_not_found"

        stats = client.get("/v1/ops/telemetry").json()
        assert {"recordsSent", "recordsPerSecond", "queueDepth", "movingCars"} <= set(stats)
        assert (stats["movingCars"], stats["simSpeed"], stats["fleetSize"]) == (1, 10, 2)
        assert _until(lambda: client.get("/v1/ops/telemetry").json()["recordsSent"] >= 3)  # the loops run
        assert client.get("/healthz").json()["status"] == "ok"


def test_the_wired_app_drives_an_assigned_car_to_the_drop_off_and_stops_at_once() -> None:
    wired = Wired(sim_speed=100, boarding_s=1)  # about 1.6 wall seconds for the whole ride
    with wired.client() as client:
        assert client.get("/v1/cars/car-00001").json()["phase"] == "IDLE"
        wired.messaging.deliver("events", _assigned_data(), subject="ride-1", sequence=1)
        assert _until(lambda: client.get("/v1/cars/car-00001").json()["phase"] != "IDLE")
        assert _until(lambda: client.get("/v1/cars/car-00001").json()["odometerM"] > 0)
        done = _until(lambda: (car := client.get("/v1/cars/car-00001").json())["rideId"] is None and car)
        assert (done["phase"], done["lat"], done["lon"]) == ("IDLE", DROPOFF.lat, DROPOFF.lon)
        assert _until(lambda: wired.phases("car-00001")[-1:] == ["IDLE"])
        assert wired.phases("car-00001")[-4:] == ["TO_PICKUP", "BOARDING", "TO_DESTINATION", "IDLE"]
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1.0  # the loops wait on the stop event


def test_a_restarted_app_goes_on_with_the_ride_from_where_the_car_was_saved() -> None:
    store = MemoryCarStore()  # the cars table and the inbox, surviving the process
    first = Wired(sim_speed=20, boarding_s=1, store=store, save_every_s=0.5)  # ~4 wall s to the pickup
    with first.client():
        assigned = first.messaging.deliver("events", _assigned_data(), subject="ride-1", sequence=1)
        assert _until(lambda: (row := store.tables.cars.get("car-00001")) and row.car.travelled_m > 100)
        store.tables.unreachable = True  # killed: nothing more is written, not even the last progress
    saved = store.tables.cars["car-00001"]
    leg = saved.car.leg
    assert (
        leg is not None
        and 100 < saved.car.travelled_m < leg.length_m
        and saved.car.phase is CarPhase.TO_PICKUP
    )
    store.tables.unreachable = False

    second = Wired(sim_speed=20, boarding_s=1, store=store)
    with second.client() as client:
        car = client.get("/v1/cars/car-00001").json()
        assert (car["rideId"], car["phase"]) == ("ride-1", "TO_PICKUP")
        assert car["odometerM"] >= round(saved.car.odometer_m, 1)  # on from where it was saved, not from 0
        with pytest.raises(Duplicate):  # the marker survived too: the assignment is not taken again
            second.messaging.consumers["events"](assigned.resent(), _assigned_data())
        done = _until(lambda: (car := client.get("/v1/cars/car-00001").json())["rideId"] is None and car, 30)
        assert (done["phase"], done["lat"], done["lon"]) == ("IDLE", DROPOFF.lat, DROPOFF.lon)
        assert _until(lambda: second.phases("car-00001")[-1:] == ["IDLE"])
    first_report = second.telemetry("car-00001")[0]  # reported at once, where it was saved, with its ride
    assert (first_report.ride_id, first_report.phase, first_report.odometer_m) == (
        "ride-1",
        "TO_PICKUP",
        round(saved.car.odometer_m, 2),
    )
    assert (first_report.lat, first_report.lon) == (saved.car.lat, saved.car.lon)
    assert second.phases("car-00001") == ["TO_PICKUP", "BOARDING", "TO_DESTINATION", "IDLE"]
    assert store.tables.cars["car-00001"].car.ride_id is None  # and the finished ride was saved


def test_two_production_replicas_on_moto_split_the_groups_and_a_stall_reaches_the_cars_driver() -> None:
    """``aws_adapters`` twice on one in-process moto: every group leased by one of them, and a stall asked
    of the replica that does not drive the car is applied by the one that does."""
    with mock_aws():
        apply(discover(), Clients(client))
        apps = [
            signed(
                TestClient(
                    SERVICE.app(
                        settings=settings_for(
                            "car-simulator", aws_endpoint_url="", fleet_size=6, replica=name, lease_s=1.5
                        )
                    )
                ),
                "bff",
                "car-simulator",
            )
            for name in ("replica-a", "replica-b")
        ]
        with apps[0] as one, apps[1] as two:

            def held() -> list[list[str]]:
                return [app.get("/v1/ops/telemetry").json()["groupsHeld"] for app in (one, two)]

            assert _until(lambda: [len(groups) for groups in held()] == [8, 8], timeout_s=20)
            assert not set(held()[0]) & set(held()[1])
            driven_by_one = one.get("/v1/ops/telemetry").json()["carsDrivenHere"]
            assert driven_by_one + two.get("/v1/ops/telemetry").json()["carsDrivenHere"] == 6
            cars = two.get("/v1/cars").json()["cars"]
            assert len(cars) == 6 and cars == sorted(cars, key=lambda car: car["carId"])
            car_id = next(c["carId"] for c in cars if car_group(c["carId"]) in held()[0])  # driven by one
            assert two.post(f"/v1/ops/cars/{car_id}/stall").status_code == 202
            assert _until(lambda: two.get(f"/v1/cars/{car_id}").json()["phase"] == "STALLED")
