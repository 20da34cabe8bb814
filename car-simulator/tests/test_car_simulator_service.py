"""The fleet events through the idempotent consumer handler, and the HTTP API (in-memory adapters)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned, CarOutOfService, CarReleased
from acr.unit_of_work import Duplicate
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.adapters.memory import FakeKinesis, MemoryInbox, StraightRoads
from car_simulator.bootstrap import create_app
from car_simulator.domain import Car, Phase
from car_simulator.handlers import CarSimulator, SimulationLoop
from car_simulator.simulation import Simulation

PICKUP = Place(label="1 Harbour Street", lat=60.165, lon=24.94)
DROPOFF = Place(label="9 Station Road", lat=60.17, lon=24.93)


@pytest.fixture
def simulator() -> CarSimulator:
    cars = [Car("car-00001", 60.16, 24.93), Car("car-00002", 60.161, 24.931)]
    return CarSimulator(
        simulation=Simulation(cars, sim_speed=10, wall_start=0.0),
        roads=StraightRoads(10.0),
        boarding_s=60,
        inbox=MemoryInbox(),
    )


def _assigned(
    car: str = "car-00001", ride: str = "ride-1", replaces: str | None = None
) -> catalog.CloudEvent:
    data = CarAssigned(
        ride_id=ride,
        car_id=car,
        car_lat=60.16,
        car_lon=24.93,
        pickup=PICKUP,
        dropoff=DROPOFF,
        pickup_eta_seconds=100,
        assigned_at="2026-01-01T00:00:00Z",
        replaces_car_id=replaces,
    )
    return catalog.record(data, subject=ride, sequence=1)


def _deliver(simulator: CarSimulator, event: catalog.CloudEvent) -> None:
    simulator.handler()(event, catalog.decode(event))


def test_car_assigned_starts_the_drive_and_a_redelivery_does_not_restart_it(simulator: CarSimulator) -> None:
    event = _assigned()
    _deliver(simulator, event)
    car = simulator.simulation.car("car-00001")
    assert (car.phase, car.ride_id) == (Phase.TO_PICKUP, "ride-1")
    simulator.tick(2.0)  # 1 wall second of progress = 10 simulated seconds
    odometer = car.odometer_m
    assert odometer == pytest.approx(100.0, rel=1e-6)
    with pytest.raises(Duplicate):
        _deliver(simulator, event)
    assert car.odometer_m == odometer and car.phase is Phase.TO_PICKUP and car.travelled_m == odometer


def test_released_and_out_of_service_cars_stop_where_they_are(simulator: CarSimulator) -> None:
    _deliver(simulator, _assigned())
    _deliver(simulator, _assigned("car-00002", "ride-2"))
    simulator.tick(1.0)
    _deliver(
        simulator,
        catalog.record(
            CarReleased(ride_id="ride-1", car_id="car-00001", reason="RIDER_CANCELLED"), subject="ride-1"
        ),
    )
    simulator.simulation.stall("car-00002")
    _deliver(
        simulator, catalog.record(CarOutOfService(car_id="car-00002", reason="stalled"), subject="car-00002")
    )
    one, two = simulator.simulation.car("car-00001"), simulator.simulation.car("car-00002")
    assert (one.phase, one.ride_id, two.phase, two.ride_id) == (Phase.IDLE, None, Phase.STALLED, None)
    where = (one.position, two.position)
    simulator.tick(5.0)
    assert (one.position, two.position) == where


def test_an_event_for_an_unknown_car_is_consumed_without_effect(simulator: CarSimulator) -> None:
    _deliver(simulator, _assigned("car-99999"))
    assert all(c.phase is Phase.IDLE for c in simulator.simulation.cars.values())


def test_the_loop_hands_every_report_to_the_publisher_queue(simulator: CarSimulator) -> None:
    clock = [0.0]
    buffer = TelemetryBuffer()
    loop = SimulationLoop(simulator, buffer, clock=lambda: clock[0])
    _deliver(simulator, _assigned())
    clock[0] = 0.25
    assert loop.step() >= 1 and buffer.take(wait_s=0)[0].telemetry.phase is Phase.TO_PICKUP


def test_http_cars_stall_unstall_and_telemetry_stats(simulator: CarSimulator) -> None:
    kinesis = FakeKinesis()
    publisher = KinesisPublisher(kinesis, "acr-car-telemetry", TelemetryBuffer())
    client = TestClient(create_app(simulator, publisher))
    _deliver(simulator, _assigned())
    cars = client.get("/v1/cars").json()["cars"]
    assert [c["carId"] for c in cars] == ["car-00001", "car-00002"]
    assert set(cars[0]) == {"carId", "phase", "rideId", "lat", "lon", "speedKmh"}
    assert (cars[0]["phase"], cars[0]["rideId"], cars[0]["speedKmh"]) == ("TO_PICKUP", "ride-1", 36.0)

    stalled = client.post("/v1/cars/car-00001/stall").json()
    assert (stalled["phase"], stalled["rideId"], stalled["speedKmh"]) == ("STALLED", "ride-1", 0.0)
    assert stalled["target"] == {"lat": PICKUP.lat, "lon": PICKUP.lon}
    assert client.get("/v1/cars/car-00001").json()["phase"] == "STALLED"
    assert client.post("/v1/cars/car-00001/unstall").json()["phase"] == "TO_PICKUP"

    for path in ("/v1/cars/car-42", "/v1/cars/car-42/stall", "/v1/cars/car-42/unstall"):
        response = client.get(path) if path.endswith("42") else client.post(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "car_not_found"

    stats = client.get("/v1/ops/telemetry").json()
    assert {"recordsSent", "recordsPerSecond", "queueDepth", "movingCars"} <= set(stats)
    assert stats["movingCars"] == 1 and stats["recordsSent"] == 0
    assert client.get("/healthz").json()["status"] == "ok"
