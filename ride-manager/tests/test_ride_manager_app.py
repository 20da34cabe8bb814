"""The app wired with in-memory adapters and a fake messaging, under its real lifespan (loops included):
its HTTP API, its error codes, its consumers and its dispatch timer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from ride_manager_fakes import (
    MemoryHistoryUnitOfWork,
    MemoryRideHistory,
    MemoryRideUnitOfWork,
    RideStore,
    StaticDispatch,
    StaticGeo,
)

from acr import catalog, clock, errors
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned
from acr.catalog.monitoring import CarArrivedAtPickup, CarStalled, TripStarted
from acr.catalog.ride import RideUpdated
from acr.projections import Projections
from acr.service import Runtime
from acr.settings import Settings
from acr_testkit.identity import bearer, credentials_of, settings_for, signed
from acr_testkit.messaging import FakeMessaging
from ride_manager import domain
from ride_manager.api import RideManager
from ride_manager.bootstrap import SERVICE, Adapters, assemble

A = Place(label="1 Harbour Street, 00100", lat=60.16, lon=24.93, address_id="A1")
B = Place(label="9 Station Road, 00130", lat=60.18, lon=24.96, address_id="A2")
QUOTE_BODY = {"pickup": {"addressId": "A1"}, "dropoff": {"addressId": "A2"}}


class DownGeo(StaticGeo):
    def place_of_address(self, address_id: str) -> Place:
        raise errors.DependencyUnavailable("address-finder did not answer")


@dataclass
class Wired:
    client: TestClient
    store: RideStore
    messaging: FakeMessaging
    runtime: Runtime
    dispatch: StaticDispatch
    relayed: set[str] = field(default_factory=set)

    def relay_snapshots(self) -> None:
        """What the relay and the updates topic do: every new ``RideUpdated`` reaches the history queue."""
        for outgoing in self.store.outbox:
            data = catalog.decode(outgoing.event)
            on_topic = outgoing.destination.kind == "topic"  # its copy for the bus's archive goes elsewhere
            if isinstance(data, RideUpdated) and on_topic and outgoing.event.id not in self.relayed:
                self.relayed.add(outgoing.event.id)
                self.messaging.deliver("history.fifo", data, subject=data.ride_id, sequence=data.version)

    def book(self, key: str = "k") -> dict[str, object]:
        quote = self.client.post("/v1/quotes", json=QUOTE_BODY).json()
        ride = self.client.post(
            "/v1/rides",
            json={"quoteId": quote["quoteId"]},
            headers={"Idempotency-Key": key},
        )
        assert ride.status_code == 202
        return dict(ride.json())


def adapters(
    store: RideStore, messaging: FakeMessaging, dispatch: StaticDispatch, geo: StaticGeo | None = None
) -> Adapters:
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: MemoryRideUnitOfWork(store),
        history_unit_of_work=lambda: MemoryHistoryUnitOfWork(store),
        rebuild_unit_of_work=lambda: MemoryHistoryUnitOfWork(store),
        history=MemoryRideHistory(store),
        projections=Projections(),
        geo=geo or StaticGeo({"A1": A, "A2": B}),
        dispatch=dispatch,
    )


@contextmanager
def wired(
    eta: float | None = 90, settings: Settings | None = None, geo: StaticGeo | None = None
) -> Iterator[Wired]:
    store, messaging, runtimes, dispatch = RideStore(), FakeMessaging(), list[Runtime](), StaticDispatch(eta)

    def wire(runtime: Runtime) -> RideManager:
        runtimes.append(runtime)
        return assemble(runtime, adapters(store, messaging, dispatch, geo))

    app = SERVICE.app(settings=settings or settings_for("ride-manager"), wire=wire)
    with signed(TestClient(app), "bff", "ride-manager", rider="rdr_1") as client:
        yield Wired(client, store, messaging, runtimes[0], dispatch)


def test_the_service_consumes_its_queues_and_runs_the_watchdog() -> None:
    with wired() as app:
        assert set(app.messaging.consumers) == {"events", "history.fifo", "history-rebuild"}
        assert app.runtime.loops.names == ["watchdog"]


def test_http_errors_have_codes() -> None:
    with wired(eta=None) as app:
        client = app.client
        none = client.post("/v1/quotes", json=QUOTE_BODY)
        assert (none.status_code, none.json()["error"]["code"]) == (409, "no_car_available")
        missing = client.post("/v1/quotes", json=QUOTE_BODY | {"pickup": {"addressId": "nope"}})
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "address_not_found")
        bad = client.post("/v1/quotes", json=QUOTE_BODY | {"pickup": {"lat": 1}})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")
        for far in ({"lat": 1e308, "lon": 1e308}, {"lat": 91.0, "lon": 0.0}, {"lat": 0.0, "lon": 181.0}):
            nowhere = client.post("/v1/quotes", json=QUOTE_BODY | {"pickup": far})
            assert (nowhere.status_code, nowhere.json()["error"]["code"]) == (422, "validation_error")
        no_key = client.post("/v1/rides", json={"quoteId": "q"})
        assert (no_key.status_code, no_key.json()["error"]["code"]) == (400, "idempotency_key_required")
        long_key = client.post("/v1/rides", json={"quoteId": "q"}, headers={"Idempotency-Key": "k" * 129})
        assert (long_key.status_code, long_key.json()["error"]["code"]) == (400, "bad_request")
        unknown = client.post("/v1/rides", json={"quoteId": "q"}, headers={"Idempotency-Key": "k"})
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "quote_not_found")
        other = client.get("/v1/rides/ride_x")
        assert (other.status_code, other.json()["error"]["code"]) == (404, "ride_not_found")
        cursor = client.get("/v1/rides", params={"cursor": "not-a-cursor"})
        assert (cursor.status_code, cursor.json()["error"]["code"]) == (422, "invalid_cursor")
        inactive = client.get("/v1/ops/rides", params={"active": "false"})
        assert (inactive.status_code, inactive.json()["error"]["code"]) == (422, "validation_error")


def test_the_rider_is_the_subject_of_the_bff_s_token_never_a_parameter() -> None:
    with wired() as app:
        ride_id = str(app.book()["rideId"])
        path = f"/v1/rides/{ride_id}"
        as_rdr_2 = credentials_of("bff").auth("ride-manager", "rdr_2")
        for refused in (
            app.client.get(path, auth=as_rdr_2, params={"riderId": "rdr_1"}),  # a parameter is ignored
            app.client.post(f"{path}/cancel", auth=as_rdr_2),
        ):
            assert (refused.status_code, refused.json()["error"]["code"]) == (404, "ride_not_found")
        for_itself = app.client.get(path, auth=credentials_of("bff").auth("ride-manager"))
        assert (for_itself.status_code, for_itself.json()["error"]["code"]) == (403, "forbidden")
        not_the_bff = app.client.get(path, auth=credentials_of("reward").auth("ride-manager", "rdr_1"))
        assert (not_the_bff.status_code, not_the_bff.json()["error"]["code"]) == (403, "forbidden")
        unsigned = app.client.get(path, auth=None, headers=bearer("bff", "payment", "rdr_1"))
        assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "unauthorized")
        assert app.client.get(path).json()["status"] == "REQUESTED"


def test_a_dependency_that_does_not_answer_is_a_503() -> None:
    with wired(geo=DownGeo()) as app:
        down = app.client.post("/v1/quotes", json=QUOTE_BODY)
        assert (down.status_code, down.json()["error"]["code"]) == (503, "dependency_unavailable")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (domain.QuoteNotFound, 404, "quote_not_found"),
        (domain.RideNotFound, 404, "ride_not_found"),
        (domain.AddressNotFound, 404, "address_not_found"),
        (domain.QuoteExpired, 409, "quote_expired"),
        (domain.QuoteAlreadyUsed, 409, "quote_already_used"),
        (domain.IdempotencyKeyConflict, 409, "idempotency_key_conflict"),
        (domain.NotCancellable, 409, "not_cancellable"),
        (domain.NoCarNearby, 409, "no_car_available"),
        (domain.OutsideServiceArea, 422, "outside_service_area"),
    ],
)
def test_each_domain_refusal_keeps_its_status_and_code(
    error: type[errors.ServiceError], status: int, code: str
) -> None:
    refusal = error("no")
    assert (refusal.status, refusal.code, refusal.message) == (status, code, "no")


def test_http_books_and_lists_and_replays_versions() -> None:
    with wired() as app:
        client = app.client
        quote = client.post(
            "/v1/quotes",
            json={"pickup": {"addressId": "A1"}, "dropoff": {"lat": 60.18, "lon": 24.96}},
        )
        assert quote.status_code == 201 and quote.json()["fare"]["currency"] == "EUR"
        ride = client.post(
            "/v1/rides",
            json={"quoteId": quote.json()["quoteId"]},
            headers={"Idempotency-Key": "abc"},
        )
        assert ride.status_code == 202 and ride.json()["version"] == 1
        app.relay_snapshots()
        rides = client.get("/v1/rides").json()
        assert [r["rideId"] for r in rides["rides"]] == [ride.json()["rideId"]]
        versions = client.get(f"/v1/rides/{ride.json()['rideId']}/versions").json()
        assert [v["version"] for v in versions["versions"]] == [1]


def test_the_wired_app_consumes_ride_events_and_serves_what_they_did() -> None:
    with wired() as app:
        client, ride = app.client, app.book()
        ride_id = str(ride["rideId"])
        assigned = CarAssigned(
            ride_id=ride_id,
            car_id="car-1",
            car_lat=60.1,
            car_lon=24.9,
            pickup=A,
            dropoff=B,
            pickup_eta_seconds=80,
            assigned_at=clock.now(),
        )
        app.messaging.deliver("events", assigned, subject=ride_id)
        now = client.get(f"/v1/rides/{ride_id}").json()
        assert (now["status"], now["version"], now["carId"]) == ("CAR_ASSIGNED", 2, "car-1")
        assert client.get("/v1/rides").json()["rides"] == []  # the history has not caught up

        app.relay_snapshots()
        (listed,) = client.get("/v1/rides").json()["rides"]
        assert listed == now
        versions = client.get(f"/v1/rides/{ride_id}/versions", params={"afterVersion": 1}).json()
        assert versions == {"versions": [now]}
        assert [r["rideId"] for r in client.get("/v1/ops/rides").json()["rides"]] == [ride_id]

        cancelled = client.post(f"/v1/rides/{ride_id}/cancel")
        assert cancelled.status_code == 202
        assert (cancelled.json()["status"], cancelled.json()["cancellation"]["reason"]) == (
            "CANCELLED",
            "RIDER_CANCELLED",
        )
        assert [r["rideId"] for r in client.get("/v1/ops/rides").json()["rides"]] == [ride_id]  # not yet told
        app.relay_snapshots()
        assert client.get("/v1/ops/rides").json()["rides"] == []
        assert client.get("/healthz").json()["service"] == "ride-manager"


def test_the_watchdog_runs_with_the_app() -> None:
    with wired(settings=settings_for("ride-manager", dispatch_timeout_s=0.2, watchdog_settle_s=0)) as app:
        ride_id = str(app.book()["rideId"])
        deadline = time.monotonic() + 10
        status = ""
        while time.monotonic() < deadline and status != "CANCELLED":
            time.sleep(0.05)
            status = app.client.get(f"/v1/rides/{ride_id}").json()["status"]
        cancellation = app.client.get(f"/v1/rides/{ride_id}").json()["cancellation"]
        assert (status, cancellation["reason"]) == ("CANCELLED", "DISPATCH_TIMEOUT")


def _assigned(ride_id: str, car_id: str = "car-1") -> CarAssigned:
    return CarAssigned(
        ride_id=ride_id,
        car_id=car_id,
        car_lat=60.1,
        car_lon=24.9,
        pickup=A,
        dropoff=B,
        pickup_eta_seconds=80,
        assigned_at=clock.now(),
    )


def _status(app: Wired, ride_id: str) -> str:
    return str(app.client.get(f"/v1/rides/{ride_id}").json()["status"])


def test_the_watchdog_in_the_app_waits_for_a_car_the_fleet_assigned_and_ends_a_ride_it_did_not() -> None:
    with wired(settings=settings_for("ride-manager", dispatch_timeout_s=0.2, watchdog_settle_s=0)) as app:
        held, lost = str(app.book("k1")["rideId"]), str(app.book("k2")["rideId"])
        app.dispatch.assignments[held] = "car-1"  # its CarAssigned is still on its way
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _status(app, lost) != "CANCELLED":
            time.sleep(0.05)
        time.sleep(0.5)  # a few more deadlines of the held ride pass
        assert _status(app, lost) == "CANCELLED" and _status(app, held) == "REQUESTED"
        assert app.dispatch.asked.count(held) >= 2
        app.messaging.deliver("events", _assigned(held), subject=held)
        assert _status(app, held) == "CAR_ASSIGNED"


def test_a_stalled_trip_can_be_cancelled_by_the_rider_or_over_the_ops_route() -> None:
    with wired() as app:
        client = app.client
        rides = [str(app.book(key)["rideId"]) for key in ("k1", "k2")]
        for ride_id in rides:
            app.messaging.deliver("events", _assigned(ride_id), subject=ride_id)
            app.messaging.deliver(
                "events", CarArrivedAtPickup(ride_id=ride_id, car_id="car-1", at=clock.now()), subject=ride_id
            )
            app.messaging.deliver(
                "events", TripStarted(ride_id=ride_id, car_id="car-1", at=clock.now()), subject=ride_id
            )
        mine, ops = rides
        healthy = client.post(f"/v1/rides/{mine}/cancel")
        assert (healthy.status_code, healthy.json()["error"]["code"]) == (409, "not_cancellable")
        refused = client.post(f"/v1/ops/rides/{ops}/cancel")
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "not_cancellable")
        missing = client.post("/v1/ops/rides/ride_x/cancel")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ride_not_found")

        for ride_id in rides:
            stall = CarStalled(ride_id=ride_id, car_id="car-1", lat=60.17, lon=24.95, at=clock.now())
            app.messaging.deliver("events", stall, subject="car-1")
        by_rider = client.post(f"/v1/rides/{mine}/cancel")
        by_operator = client.post(f"/v1/ops/rides/{ops}/cancel")
        for answer, reason in ((by_rider, "RIDER_CANCELLED"), (by_operator, "OPERATOR_CANCELLED")):
            assert answer.status_code == 202
            body = answer.json()
            assert (body["status"], body["cancellation"]["reason"], body["cancellation"]["fee"]) == (
                "CANCELLED",
                reason,
                None,
            )
