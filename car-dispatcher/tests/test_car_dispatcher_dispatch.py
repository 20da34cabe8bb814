from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.monitoring import CarStalled, TripCompleted, TripStarted
from acr.catalog.ride import RideCancelled, RideRequested
from acr.money import Money
from acr.unit_of_work import Duplicate
from car_dispatcher.adapters.memory import FleetStore, MemoryFleetUnitOfWork, StoreFleet, StraightRoads
from car_dispatcher.bootstrap import create_app
from car_dispatcher.domain import AssignmentStatus, Car, CarState, DispatchPaused
from car_dispatcher.handlers import Dispatcher

PICKUP = Place(label="pickup", lat=60.170, lon=24.940)
DROPOFF = Place(label="dropoff", lat=60.180, lon=24.960)


def _store(*cars: tuple[str, float, float]) -> FleetStore:
    store = FleetStore()
    for car_id, lat, lon in cars:
        store.cars[car_id] = Car(car_id, CarState.AVAILABLE, lat, lon)
    return store


def _dispatcher(store: FleetStore, before_commit=None) -> Dispatcher:  # type: ignore[no-untyped-def]
    return Dispatcher(
        uow=lambda: MemoryFleetUnitOfWork(store, before_commit),
        roads=StraightRoads(),
        fleet=StoreFleet(store),
        max_pickup_eta_s=900,
    )


def _event(data):  # type: ignore[no-untyped-def]
    return catalog.record(data, subject=getattr(data, "ride_id", None)), data


def _requested(ride_id: str):  # type: ignore[no-untyped-def]
    return _event(
        RideRequested(
            ride_id=ride_id,
            rider_id="rdr",
            pickup=PICKUP,
            dropoff=DROPOFF,
            quoted_fare=Money.of(5),
            quoted_distance_meters=1,
            quoted_duration_seconds=1,
            requested_at="2026-01-01T00:00:00Z",
        )
    )


def _types(store: FleetStore) -> list[str]:
    return [o.event.type.rsplit(".", 1)[1] for o in store.outbox]


def test_the_nearest_available_car_is_reserved_and_announced() -> None:
    store = _store(("car-far", 60.20, 24.94), ("car-near", 60.171, 24.94))
    event, data = _requested("ride_1")
    _dispatcher(store).handle(event, data)
    assert store.cars["car-near"].state == CarState.RESERVED and store.cars["car-near"].ride_id == "ride_1"
    assert _types(store) == ["CarAssigned"] and store.outbox[0].event.data["carId"] == "car-near"
    with pytest.raises(Duplicate):
        _dispatcher(store).handle(event.resent(), data)


def test_two_rides_for_the_last_car_one_gets_it_the_other_hears_no_car() -> None:
    store = _store(("car-1", 60.171, 24.94))
    first, second = _requested("ride_1"), _requested("ride_2")
    sneaked = {"done": False}

    def another_dispatcher_wins() -> None:
        if not sneaked["done"]:
            sneaked["done"] = True
            _dispatcher(store).handle(*first)

    _dispatcher(store, another_dispatcher_wins).handle(*second)
    assert store.cars["car-1"].ride_id == "ride_1"
    assert _types(store) == ["CarAssigned", "NoCarAvailable"]
    assert store.assignments["ride_2"].status == AssignmentStatus.NO_CAR


def test_paused_dispatch_leaves_the_request_for_later() -> None:
    store = _store(("car-1", 60.171, 24.94))
    dispatcher = _dispatcher(store)
    dispatcher.control.paused = True
    with pytest.raises(DispatchPaused):
        dispatcher.handle(*_requested("ride_1"))
    assert store.outbox == []


def test_a_cancel_releases_the_car_and_a_late_request_assigns_nothing() -> None:
    store = _store(("car-1", 60.171, 24.94))
    dispatcher = _dispatcher(store)
    dispatcher.handle(*_requested("ride_1"))
    dispatcher.handle(
        *_event(
            RideCancelled(
                ride_id="ride_1", rider_id="rdr", car_id="car-1", reason="DISPATCH_TIMEOUT", cancelled_at="t"
            )
        )
    )
    assert store.cars["car-1"].state == CarState.AVAILABLE
    assert _types(store) == ["CarAssigned", "CarReleased"]

    dispatcher.handle(
        *_event(
            RideCancelled(
                ride_id="ride_2", rider_id="rdr", car_id=None, reason="RIDER_CANCELLED", cancelled_at="t"
            )
        )
    )
    dispatcher.handle(*_requested("ride_2"))  # arrives after its cancel: a tombstone stops it
    assert _types(store) == ["CarAssigned", "CarReleased"] and store.cars["car-1"].state == CarState.AVAILABLE


def test_a_completed_trip_frees_the_car() -> None:
    store = _store(("car-1", 60.171, 24.94))
    dispatcher = _dispatcher(store)
    dispatcher.handle(*_requested("ride_1"))
    dispatcher.handle(*_event(TripStarted(ride_id="ride_1", car_id="car-1", at="t")))
    assert store.cars["car-1"].state == CarState.ON_TRIP
    dispatcher.handle(
        *_event(
            TripCompleted(ride_id="ride_1", car_id="car-1", distance_meters=100, duration_seconds=10, at="t")
        )
    )
    assert store.cars["car-1"].state == CarState.AVAILABLE and store.cars["car-1"].ride_id is None


def test_a_stall_mid_trip_sends_another_car_to_where_the_car_stopped() -> None:
    store = _store(("car-1", 60.171, 24.94), ("car-2", 60.175, 24.95))
    dispatcher = _dispatcher(store)
    dispatcher.handle(*_requested("ride_1"))
    dispatcher.handle(*_event(TripStarted(ride_id="ride_1", car_id="car-1", at="t")))
    dispatcher.handle(*_event(CarStalled(ride_id="ride_1", car_id="car-1", lat=60.174, lon=24.95, at="t")))
    assert store.cars["car-1"].state == CarState.OUT_OF_SERVICE
    assert store.cars["car-2"].ride_id == "ride_1"
    replacement = store.outbox[-1].event.data
    assert (replacement["replacesCarId"], replacement["pickup"]["lat"]) == ("car-1", 60.174)
    assert _types(store) == ["CarAssigned", "CarOutOfService", "CarAssigned"]
    assert dispatcher.return_to_service("car-1").state == CarState.AVAILABLE


def test_pickup_eta_and_operator_controls_over_http() -> None:
    store = _store(("car-1", 60.171, 24.94))
    client = TestClient(create_app(_dispatcher(store)))
    ok = client.post("/v1/pickup-eta", json={"lat": 60.17, "lon": 24.94})
    assert ok.status_code == 200 and ok.json()["carId"] == "car-1"
    outside = client.post("/v1/pickup-eta", json={"lat": 10, "lon": 10})
    assert (outside.status_code, outside.json()["error"]["code"]) == (422, "outside_service_area")
    store.cars["car-1"] = Car("car-1", CarState.RESERVED, 60.171, 24.94, "r")
    none = client.post("/v1/pickup-eta", json={"lat": 60.17, "lon": 24.94})
    assert (none.status_code, none.json()["error"]["code"]) == (409, "no_car_available")
    assert client.get("/v1/fleet").json()["cars"][0]["state"] == "RESERVED"
    assert client.post("/v1/ops/cars/car-1/return-to-service").status_code == 409
    assert client.post("/v1/ops/cars/nope/return-to-service").json()["error"]["code"] == "car_not_found"
    assert client.put("/v1/ops/dispatch", json={"paused": True}).json() == {"paused": True}
