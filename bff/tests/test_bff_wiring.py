"""The BFF's app as production wires it: the kernel's lifespan, the push consumer on every queue of the
BFF's slice; then the production adapters on in-process moto, closed when the app stops."""

from __future__ import annotations

import pytest
from bff_fakes import OPS, SETTINGS, ride_json, token_for
from fastapi.testclient import TestClient

from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.channels import EventBridgeChannel, SnsFifoChannel
from acr.runtime import topic_arns
from acr.service import Runtime
from acr.unit_of_work import outgoing
from acr_testkit.aws import in_process_messaging
from acr_testkit.messaging import FakeMessaging
from bff.auth import new_rider_id
from bff.bootstrap import SERVICE, assemble
from bff.state import BffState, Dependencies
from bff.topology import TOPOLOGY


def test_the_app_subscribes_the_push_consumer_on_every_queue_of_its_slice(
    deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    def wire(runtime: Runtime) -> BffState:
        return assemble(runtime, deps)

    with TestClient(SERVICE.app(settings=SETTINGS, wire=wire)) as client:
        assert set(push_messaging.consumers) == {"ride-eta", "ride-updates.fifo"}
        health = client.get("/healthz").json()  # the BFF's own, which asks every service it calls
        assert health["service"] == "bff" and set(health["dependencies"].values()) == {"ok"}
        assert client.get("/v1/ops/stats").status_code == 401  # the kernel's ops routes need the ops token
        assert "published" in client.get("/v1/ops/stats", headers=OPS).json()


@pytest.mark.timeout(120)
def test_production_wiring_pushes_what_the_topic_and_the_bus_deliver() -> None:
    settings = SETTINGS.model_copy(update={"aws_endpoint_url": "", "sqs_wait_s": 1})
    rider_id = new_rider_id()
    ride = ride_json("ride_1", rider_id, 1)
    updated = RideUpdated(ride_id="ride_1", rider_id=rider_id, version=1, ride=ride)
    eta = RideEtaUpdated(
        ride_id="ride_1", car_id="car-00001", phase="TO_PICKUP", eta_seconds=60.0, lat=1.0, lon=2.0
    )
    with in_process_messaging(TOPOLOGY) as messaging, TestClient(SERVICE.app(settings=settings)) as client:
        state: BffState = client.app.state.service  # type: ignore[attr-defined]
        with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
            SnsFifoChannel(messaging.sns, topic_arns(messaging.sns)).send(
                [outgoing(updated, subject="ride_1")]
            )
            assert ws.receive_json()["version"] == 1
            EventBridgeChannel(messaging.events).send([outgoing(eta, subject="ride_1")])
            assert ws.receive_json()["type"] == "ride.eta"
        http = state.deps.ride_manager._http._client  # type: ignore[attr-defined]  # the production adapter's
        assert not http.is_closed
    assert http.is_closed  # the kernel closed the HTTP client once the app stopped
