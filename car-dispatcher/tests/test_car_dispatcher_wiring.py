"""The app as production wires it (``assemble``), with fakes for the adapters: events delivered through the
kernel's consumer, telemetry through the stream reader, and the HTTP routes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from car_dispatcher_fakes import (
    FleetStore,
    MemoryFleetReadModel,
    MemoryFleetUnitOfWork,
    MemoryFleetViewUnitOfWork,
    MemoryPositions,
    StraightRoads,
)
from fastapi.testclient import TestClient
from moto import mock_aws

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.car import CarPhase, CarTelemetry
from acr.catalog.monitoring import CarStalled
from acr.catalog.ride import RideRequested
from acr.money import Money
from acr.projections import Projections
from acr.service import Runtime
from acr.stream import Checkpoint, StreamRecord
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr_city import Bounds
from acr_testkit.aws import client
from acr_testkit.identity import credentials_of, settings_for, signed
from acr_testkit.messaging import FakeMessaging
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.api import CarDispatcher
from car_dispatcher.bootstrap import SERVICE, Adapters, assemble
from car_dispatcher.domain import Car, CarState, DispatchPaused
from car_dispatcher.handlers import add_cars
from car_dispatcher.topology import FLEET_VIEW, TOPOLOGY

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _requested(ride_id: str) -> RideRequested:
    return RideRequested(
        ride_id=ride_id,
        rider_id="rdr",
        pickup=Place(label="pickup", lat=60.170, lon=24.940),
        dropoff=Place(label="dropoff", lat=60.180, lon=24.960),
        quoted_fare=Money.of(5),
        quoted_distance_meters=1,
        quoted_duration_seconds=1,
        requested_at=AT,
    )


def _telemetry(car_id: str, lat: float, lon: float) -> StreamRecord:
    data = CarTelemetry(
        car_id=car_id,
        ride_id=None,
        phase=CarPhase.IDLE,
        lat=lat,
        lon=lon,
        speed_kmh=0.0,
        heading=0.0,
        battery=1.0,
        odometer_m=0.0,
        sim_time_s=1.0,
        at=AT,
    )
    return StreamRecord("1", car_id, catalog.record(data, subject=car_id), data)


@pytest.fixture
def store() -> FleetStore:
    store = FleetStore()
    seeded = [
        Car("car-1", CarState.AVAILABLE, 60.171, 24.94),
        Car("car-far", CarState.AVAILABLE, 60.30, 24.94),  # beyond 900 s at 10 m/s
    ]
    add_cars(lambda: MemoryFleetUnitOfWork(store), seeded)
    return store


def project(store: FleetStore, messaging: FakeMessaging, already: set[str]) -> None:
    """What the bus would do: hand the car states recorded since the last call to the fleet view's queue."""
    for outgoing in store.outbox:
        if outgoing.event.type.endswith(".FleetCarUpdated") and outgoing.event.id not in already:
            messaging.consumers[FLEET_VIEW](outgoing.event, catalog.decode(outgoing.event))
            already.add(outgoing.event.id)


def test_the_wired_app_dispatches_and_answers_over_http(store: FleetStore) -> None:
    messaging, positions, projected = FakeMessaging(), MemoryPositions(store), set[str]()

    def wire(runtime: Runtime) -> CarDispatcher:
        fleet = LiveFleet(Bounds(24.5, 60.0, 25.5, 60.5), list(store.cars.values()))
        adapters = Adapters(
            consumers=messaging,
            streams=messaging,
            unit_of_work=lambda: MemoryFleetUnitOfWork(store),
            roads=StraightRoads(),
            fleet=fleet,
            positions=positions,
            cars=lambda: sorted(store.cars.values(), key=lambda c: c.car_id),
            fleet_view_unit_of_work=lambda: MemoryFleetViewUnitOfWork(store),
            rebuild_unit_of_work=lambda: MemoryFleetViewUnitOfWork(store, copies=()),
            fleet_view=MemoryFleetReadModel(store),
            projections=Projections(),
        )
        return assemble(runtime, adapters)

    app = SERVICE.app(settings=settings_for("car-dispatcher", max_pickup_eta_s=900), wire=wire)
    bff = credentials_of("bff").auth("car-dispatcher")  # the fleet's caller; ride-manager asks the rest
    with signed(TestClient(app), "ride-manager", "car-dispatcher") as client:
        assert client.get("/v1/fleet").status_code == 403
        assert client.get("/healthz").json()["service"] == "car-dispatcher"
        ok = client.post("/v1/pickup-eta", json={"lat": 60.17, "lon": 24.94})
        assert ok.status_code == 200 and ok.json()["carId"] == "car-1"
        outside = client.post("/v1/pickup-eta", json={"lat": 10, "lon": 10})
        assert (outside.status_code, outside.json()["error"]["code"]) == (422, "outside_service_area")

        unknown = client.get("/v1/assignments/ride_1")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "assignment_not_found")
        messaging.deliver("events", _requested("ride_1"), subject="ride_1")
        assert store.cars["car-1"].state == CarState.RESERVED
        assert client.get("/v1/assignments/ride_1").json() == {
            "rideId": "ride_1",
            "status": "ASSIGNED",
            "carId": "car-1",
            "tripStarted": False,
        }
        none = client.post("/v1/pickup-eta", json={"lat": 60.17, "lon": 24.94})
        assert (none.status_code, none.json()["error"]["code"]) == (409, "no_car_available")
        assert client.get("/v1/fleet", auth=bff).json()["cars"] == []  # no event reached the view yet
        project(store, messaging, projected)
        cars = client.get("/v1/fleet", auth=bff).json()["cars"]
        assert (cars[0]["carId"], cars[0]["state"], cars[0]["rideId"]) == ("car-1", "RESERVED", "ride_1")

        assert client.post("/v1/ops/cars/car-1/return-to-service").status_code == 409
        assert client.post("/v1/ops/cars/nope/return-to-service").json()["error"]["code"] == "car_not_found"
        messaging.deliver("events", CarStalled(ride_id=None, car_id="car-far", lat=60.3, lon=24.94, at=AT))
        project(store, messaging, projected)
        assert client.get("/v1/fleet", auth=bff).json()["cars"][1]["state"] == "OUT_OF_SERVICE"
        back = client.post("/v1/ops/cars/car-far/return-to-service")
        assert (back.status_code, back.json()["state"]) == (200, "AVAILABLE")
        assert client.get("/v1/fleet", auth=bff).json()["cars"][1]["state"] == "OUT_OF_SERVICE"  # not yet
        project(store, messaging, projected)
        assert client.get("/v1/fleet", auth=bff).json()["cars"][1]["state"] == "AVAILABLE"

        assert client.put("/v1/ops/dispatch", json={"paused": True}).json() == {"paused": True}
        assert client.get("/v1/ops/dispatch").json() == {"paused": True}
        with pytest.raises(DispatchPaused):
            messaging.deliver("events", _requested("ride_2"), subject="ride_2")

        checkpoint = Checkpoint("acr-car-dispatcher-checkpoints", "car-dispatcher", "shard-0", "1")
        messaging.streams["car-dispatcher"]([_telemetry("car-far", 60.29, 24.95)], checkpoint)
        assert client.get("/v1/fleet", auth=bff).json()["cars"][1]["lat"] == 60.29
        assert store.cars["car-far"].lat == 60.29 and positions.checkpoints == [checkpoint]
        watched = [_telemetry("car-1", 60.2, 24.9)]  # from a shard another replica holds
        messaging.watchers["car-dispatcher"](watched)
        assert client.get("/v1/fleet", auth=bff).json()["cars"][0]["lat"] == 60.2
        assert store.cars["car-1"].lat == 60.171  # nothing stored
        assert positions.checkpoints == [checkpoint]


def test_the_production_wiring_on_moto_consumes_from_its_queue_and_publishes_through_its_outbox() -> None:
    """``aws_adapters``: the seeded table, the live fleet read from it, the SQS consumer and the relay."""
    with mock_aws():
        apply(discover(), Clients(client))
        settings = settings_for("car-dispatcher", aws_endpoint_url="", fleet_size=3, sqs_wait_s=1)
        with signed(TestClient(SERVICE.app(settings=settings)), "bff", "car-dispatcher") as app:
            deadline = time.monotonic() + 20
            while len(app.get("/v1/fleet").json()["cars"]) < 3:  # the seeding's events, through the bus
                assert time.monotonic() < deadline, app.get("/v1/fleet").json()
                time.sleep(0.1)
            car = app.get("/v1/fleet").json()["cars"][0]
            ride = _requested("ride_1").model_copy(
                update={"pickup": Place(label="pickup", lat=car["lat"], lon=car["lon"])}
            )
            sqs = client("sqs")
            queue = sqs.get_queue_url(QueueName=TOPOLOGY.queue("events", False))["QueueUrl"]
            sqs.send_message(QueueUrl=queue, MessageBody=catalog.record(ride, subject="ride_1").to_json())
            deadline = time.monotonic() + 20
            while (
                app.get("/v1/fleet").json()["cars"][0]["state"] == "AVAILABLE" and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            assert app.get("/v1/fleet").json()["cars"][0]["rideId"] == "ride_1"
            events = app.get("/v1/ops/events", params={"subject": "ride_1"}).json()["events"]
            assert [(e["type"], e["destination"]) for e in events] == [
                ("acme.acr.fleet.CarAssigned", "bus:acr-fleet")
            ]
