"""Two BFF replicas, each with its own queues (as ``acr.topology.replicas`` gives them) and one ride-manager:
every update reaches every replica, each pushes to the riders connected to it, and a read on one replica
shows a write made through the other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from bff_fakes import (
    SETTINGS,
    FakeAddressFinder,
    FakeChaos,
    FakeDeadLetters,
    FakeFleet,
    FakeLoyalty,
    FakePayments,
    FakeRideManager,
    FakeServiceStats,
    auth,
    ride_json,
    token_for,
)
from fastapi.testclient import TestClient

from acr.catalog.base import EventData
from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.service import Runtime
from acr_testkit.messaging import FakeMessaging
from bff.auth import new_rider_id
from bff.bootstrap import OTHER_SERVICES, SERVICE, assemble
from bff.consistency import CONSISTENCY_HEADER
from bff.state import BffState, Dependencies

RIDE_UPDATES, RIDE_ETA = "ride-updates.fifo", "ride-eta"


class Replicas:
    """Two BFF apps sharing a ride-manager; each consumes from its own queues."""

    def __init__(self, ride_manager: FakeRideManager) -> None:
        self.ride_manager = ride_manager
        self.queues = [FakeMessaging(), FakeMessaging()]
        self.clients: list[TestClient] = []

    def app(self, queues: FakeMessaging) -> TestClient:
        deps = Dependencies(
            ride_manager=self.ride_manager,
            addresses=FakeAddressFinder(),
            fleet=FakeFleet(),
            loyalty=FakeLoyalty(),
            payments=FakePayments(),
            services=FakeServiceStats(OTHER_SERVICES),
            dead_letters=FakeDeadLetters(OTHER_SERVICES),
            consumers=queues,
            chaos=FakeChaos(),
        )

        def wire(runtime: Runtime) -> BffState:
            return assemble(runtime, deps)

        return TestClient(SERVICE.app(settings=SETTINGS, wire=wire))

    def publish(self, queue: str, data: EventData, subject: str) -> None:
        """The topic (or the bus) copies each message into every replica's own queue."""
        for queues in self.queues:
            queues.deliver(queue, data, subject=subject)

    def ride_updated(self, ride: dict[str, Any]) -> None:
        data = RideUpdated(
            ride_id=ride["rideId"], rider_id=ride["riderId"], version=ride["version"], ride=ride
        )
        self.publish(RIDE_UPDATES, data, ride["rideId"])


def _quote(client: TestClient, headers: dict[str, str]) -> str:
    places = {"pickup": {"lat": 1, "lon": 1}, "dropoff": {"lat": 2, "lon": 2}}
    return str(client.post("/api/v1/quotes", json=places, headers=headers).json()["quoteId"])


def _book(client: TestClient, headers: dict[str, str]) -> str:
    booked = client.post(
        "/api/v1/rides",
        json={"quoteId": _quote(client, headers)},
        headers={**headers, "Idempotency-Key": "k1"},
    )
    assert booked.status_code == 202 and booked.headers[CONSISTENCY_HEADER]
    return str(booked.json()["rideId"])


@pytest.fixture
def replicas() -> Iterator[tuple[Replicas, TestClient, TestClient]]:
    group = Replicas(FakeRideManager())
    with ExitStack() as stack:
        a, b = (stack.enter_context(group.app(q)) for q in group.queues)
        yield group, a, b


def test_a_rider_on_one_replica_gets_every_version_and_eta_whichever_replica_it_wrote_through(
    replicas: tuple[Replicas, TestClient, TestClient],
) -> None:
    group, a, b = replicas
    rider = b.post("/api/v1/riders", json={"name": "Ada"}).json()
    headers = auth(rider["token"])
    with a.websocket_connect(f"/ws?token={rider['token']}") as ws:
        ride_id = _book(b, headers)  # REST on b, websocket on a
        group.ride_updated(group.ride_manager.versions_of[ride_id][0])
        for version in (2, 3):
            ride = ride_json(ride_id, rider["riderId"], version)
            group.ride_manager.add(ride)
            group.ride_updated(ride)
            group.ride_updated(ride)  # redelivered: still sent once
        group.ride_updated(ride_json("ride_9", new_rider_id(), 1))  # another rider's: not sent here
        assert [ws.receive_json()["version"] for _ in range(3)] == [1, 2, 3]
        eta = RideEtaUpdated(
            ride_id=ride_id, car_id="car-00001", phase="TO_PICKUP", eta_seconds=60.0, lat=1.0, lon=2.0
        )
        group.publish(RIDE_ETA, eta, ride_id)
        assert ws.receive_json()["type"] == "ride.eta"
        sentinel = ride_json(ride_id, rider["riderId"], 4)
        group.ride_manager.add(sentinel)
        group.ride_updated(sentinel)
        assert ws.receive_json()["version"] == 4  # nothing else was queued before it
    assert len(group.queues[0].consumers) == len(group.queues[1].consumers) == 2


def test_a_replica_that_never_saw_the_ride_still_pushes_its_eta(
    replicas: tuple[Replicas, TestClient, TestClient],
) -> None:
    group, a, _ = replicas
    rider_id = new_rider_id()
    group.ride_manager.add(ride_json("ride_1", rider_id, 1))  # its update was consumed before "a" started
    eta = RideEtaUpdated(
        ride_id="ride_1", car_id="car-00001", phase="TO_DESTINATION", eta_seconds=30.0, lat=1.0, lon=2.0
    )
    with a.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        group.publish(RIDE_ETA, eta, "ride_1")  # the rider is looked up among the active rides
        assert ws.receive_json() == {
            "type": "ride.eta",
            "rideId": "ride_1",
            "phase": "TO_DESTINATION",
            "etaSeconds": 30.0,
            "lat": 1.0,
            "lon": 2.0,
        }


def test_reads_on_one_replica_show_a_write_made_through_the_other(
    replicas: tuple[Replicas, TestClient, TestClient],
) -> None:
    group, a, b = replicas
    rider = a.post("/api/v1/riders", json={"name": "Ada"}).json()
    headers = auth(rider["token"])
    group.ride_manager.projection_delay = 4  # the history shows the booking from its 5th read on
    booked = a.post(
        "/api/v1/rides", json={"quoteId": _quote(a, headers)}, headers={**headers, "Idempotency-Key": "k1"}
    )
    token = booked.headers[CONSISTENCY_HEADER]
    blind = b.get("/api/v1/rides", headers=headers).json()  # no token: b knows nothing of the write
    assert booked.json()["rideId"] not in [r["rideId"] for r in blind["rides"]]
    seen = b.get("/api/v1/rides", headers={**headers, CONSISTENCY_HEADER: token}).json()
    assert [r["rideId"] for r in seen["rides"]] == [booked.json()["rideId"]]


def test_a_consistency_token_this_api_did_not_issue_is_a_bad_request(
    replicas: tuple[Replicas, TestClient, TestClient],
) -> None:
    _, a, _ = replicas
    rider = a.post("/api/v1/riders", json={"name": "Ada"}).json()
    answer = a.get("/api/v1/rides", headers={**auth(rider["token"]), CONSISTENCY_HEADER: "not-a-token"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_consistency_token"


def test_another_riders_consistency_token_makes_no_read_wait(
    replicas: tuple[Replicas, TestClient, TestClient],
) -> None:
    group, a, b = replicas
    first = auth(a.post("/api/v1/riders", json={"name": "Ada"}).json()["token"])
    booked = a.post(
        "/api/v1/rides", json={"quoteId": _quote(a, first)}, headers={**first, "Idempotency-Key": "k"}
    )
    second = auth(b.post("/api/v1/riders", json={"name": "Bo"}).json()["token"])
    calls = group.ride_manager.list_calls
    answer = b.get(
        "/api/v1/rides", headers={**second, CONSISTENCY_HEADER: booked.headers[CONSISTENCY_HEADER]}
    )
    assert answer.json()["rides"] == [] and group.ride_manager.list_calls == calls + 1  # read once, no wait
