"""The one service skeleton: settings and logging read when the app starts, the wiring run in the lifespan,
its loops started with the app and joined on shutdown, every error in one shape, the ops routes."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError

from acr import clock, faults
from acr import service as service_module
from acr.errors import DependencyUnavailable, NotFound, ServiceError, ValidationFailed
from acr.identity import new_private_key
from acr.projections import Pointer, Projection, Rebuild
from acr.service import Runtime, Service, service_state
from acr.settings import Settings
from acr.unit_of_work import Conflict
from acr_testkit.messaging import FakeMessaging

NAME = "test-svc"
OPS = {"X-Ops-Token": Settings().ops_token}  # the ops routes need the ops credential


class QuoteExpired(ServiceError):
    status, code = 410, "quote_expired"


@dataclass
class State:
    """What the wiring builds: here, what it was given, and the loop it registered."""

    runtime: Runtime
    ticks: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


class Order(BaseModel):
    quantity: int


router = APIRouter()


@router.get("/v1/state")
def read_state(state: Annotated[State, Depends(service_state)]) -> dict[str, Any]:
    return {"service": state.runtime.service, "fleetSize": state.runtime.settings.fleet_size}


@router.get("/v1/refused/{kind}")
def refuse(kind: str) -> None:
    refusals: dict[str, Exception] = {
        "expired": QuoteExpired("the quote expired", headers={"Retry-After": "5"}),
        "missing": NotFound("no ride ride_1"),
        "invalid": ValidationFailed("pickup and dropoff are the same place"),
        "down": DependencyUnavailable("address-finder did not answer"),
        "teapot": ServiceError("short and stout", status=418, code="teapot"),
        "conflict": Conflict(["ride"]),
        "bug": RuntimeError("a bug"),
        "aws-unreachable": EndpointConnectionError(endpoint_url="http://127.0.0.1:4566"),
        "aws-throttled": ClientError({"Error": {"Code": "ThrottlingException"}}, "Query"),
        "aws-refused": ClientError(
            {"Error": {"Code": "ValidationException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Query"
        ),
    }
    raise refusals[kind]


@router.post("/v1/orders")
def order(body: Order) -> dict[str, int]:
    return {"quantity": body.quantity}


def wire(runtime: Runtime) -> State:
    state = State(runtime)

    def tick(stop: threading.Event) -> None:
        state.ticks.set()
        stop.wait()
        state.ended.set()

    runtime.loops.add("ticker", tick)
    return state


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Calls to ``logs.configure`` (recorded, so the test run's own logging is left alone)."""
    calls: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        service_module.logs, "configure", lambda service, level, fmt: calls.append((service, level, fmt))
    )
    return calls


def _service(wire_fn: Any = wire) -> Service[State]:
    return Service(NAME, wire_fn, routers=[router])


def test_settings_are_read_and_logging_configured_when_the_app_starts_not_before(
    monkeypatch: pytest.MonkeyPatch, configured: list[tuple[str, str, str]]
) -> None:
    monkeypatch.setenv("ACR_FLEET_SIZE", "0")  # invalid: reading the settings now would fail
    app = _service().app()
    assert configured == []
    monkeypatch.setenv("ACR_FLEET_SIZE", "7")
    monkeypatch.setenv("ACR_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("ACR_LOG_FORMAT", "text")
    with TestClient(app) as client:
        assert client.get("/v1/state").json() == {"service": NAME, "fleetSize": 7}
    assert configured == [(NAME, "WARNING", "text")]


def test_invalid_settings_stop_the_app_from_starting(
    monkeypatch: pytest.MonkeyPatch, configured: list[tuple[str, str, str]]
) -> None:
    app = _service().app()
    monkeypatch.setenv("ACR_FLEET_SIZE", "0")
    with pytest.raises(ValidationError), TestClient(app):
        pass


def test_given_settings_are_used_instead_of_the_environment(configured: list[tuple[str, str, str]]) -> None:
    with TestClient(_service().app(settings=Settings(fleet_size=3))) as client:
        assert client.get("/v1/state").json()["fleetSize"] == 3


def test_the_wiring_runs_in_the_lifespan_and_its_loops_run_until_shutdown(
    configured: list[tuple[str, str, str]],
) -> None:
    built: list[State] = []

    def recording_wire(runtime: Runtime) -> State:
        built.append(wire(runtime))
        return built[-1]

    app = _service().app(wire=recording_wire)  # a test's wiring replaces the service's
    assert built == []
    with TestClient(app):
        (state,) = built
        assert state.runtime.service == NAME and state.runtime.loops.names == ["ticker"]
        assert state.ticks.wait(2)  # started with the app
        assert not state.ended.is_set()
    assert state.ended.is_set()  # told to stop and joined on shutdown
    assert not any(t.name == "ticker" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("kind", "status", "code", "message"),
    [
        ("expired", 410, "quote_expired", "the quote expired"),
        ("missing", 404, "not_found", "no ride ride_1"),
        ("invalid", 422, "validation_error", "pickup and dropoff are the same place"),
        ("down", 503, "dependency_unavailable", "address-finder did not answer"),
        ("teapot", 418, "teapot", "short and stout"),
        ("conflict", 409, "concurrent_update", "the resource changed meanwhile; try again"),
        ("bug", 500, "internal_error", "unexpected error"),
        ("aws-unreachable", 503, "dependency_unavailable", "a store this service needs does not answer"),
        ("aws-throttled", 503, "dependency_unavailable", "a store this service needs is busy"),
        ("aws-refused", 500, "internal_error", "unexpected error"),
    ],
)
def test_every_error_renders_as_one_shape_with_its_status(
    kind: str, status: int, code: str, message: str, configured: list[tuple[str, str, str]]
) -> None:
    with TestClient(_service().app(), raise_server_exceptions=False) as client:
        response = client.get(f"/v1/refused/{kind}")
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": message}}


def test_a_service_error_carries_its_headers(configured: list[tuple[str, str, str]]) -> None:
    with TestClient(_service().app()) as client:
        response = client.get("/v1/refused/expired")
    assert response.headers["retry-after"] == "5"


def test_the_frameworks_own_errors_take_the_same_shape(configured: list[tuple[str, str, str]]) -> None:
    with TestClient(_service().app()) as client:
        missing = client.get("/v1/nowhere")
        invalid = client.post("/v1/orders", json={"quantity": "many"})
        malformed = client.post(
            "/v1/orders", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "validation_error")
    assert "quantity" in invalid.json()["error"]["message"]
    assert malformed.status_code == 400 and malformed.json() == {
        "error": {"code": "bad_request", "message": "request body is not valid JSON"}
    }


def test_the_ops_routes_answer_without_messaging(configured: list[tuple[str, str, str]]) -> None:
    with TestClient(_service().app(), headers=OPS) as client:
        assert client.get("/healthz").json() == {"status": "ok", "service": NAME}
        stats = client.get("/v1/ops/stats").json()
        assert {"published", "consumed", "duplicatesDiscarded", "deadLettered"} <= set(stats)
        assert "dlq" not in stats
        assert client.post("/v1/ops/dlq/redrive").json() == {
            "queue": f"acr-{NAME}-producer-dlq",
            "redriven": 0,
        }
        assert client.get("/v1/ops/events", params={"subject": "ride_1"}).json() == {
            "service": NAME,
            "events": [],
        }
        for subject in ("", "r" * 257):  # no index key can be empty or that long: refused, not a 500
            refused = client.get("/v1/ops/events", params={"subject": subject})
            assert (refused.status_code, refused.json()["error"]["code"]) == (422, "validation_error")


def test_each_process_says_which_replica_it_is(configured: list[tuple[str, str, str]]) -> None:
    with TestClient(_service().app(settings=Settings(replica="test-svc-2")), headers=OPS) as client:
        answer = client.get("/v1/ops/replica").json()
    assert answer == {"service": NAME, "replica": "test-svc-2", "pid": os.getpid()}


def test_the_ops_routes_read_the_messaging_the_wiring_set(configured: list[tuple[str, str, str]]) -> None:
    class Messaging(FakeMessaging):
        def stats(self) -> dict[str, object]:
            return {"dlq": {"acr-test-svc-events-dlq": 2}}

        def redrive_dead_letters(self) -> int:
            return 3

        def events_about(self, subject: str) -> list[dict[str, object]]:
            return [{"type": "acme.acr.fleet.CarReleased", "subject": subject}]

    def with_messaging(runtime: Runtime) -> State:
        runtime.messaging = Messaging()
        return wire(runtime)

    with TestClient(_service(with_messaging).app(), headers=OPS) as client:
        stats = client.get("/v1/ops/stats").json()
        assert stats["dlq"] == {"acr-test-svc-events-dlq": 2} and "consumed" in stats
        assert client.post("/v1/ops/dlq/redrive").json()["redriven"] == 3
        events = client.get("/v1/ops/events", params={"subject": "ride_1"}).json()["events"]
        assert events == [{"type": "acme.acr.fleet.CarReleased", "subject": "ride_1"}]


def test_the_ops_routes_list_the_read_models_the_wiring_added(configured: list[tuple[str, str, str]]) -> None:
    class NoPointers:
        def read(self, name: str) -> Pointer | None:
            return None

        def write(self, pointer: Pointer, expected: Pointer | None) -> Pointer | None:
            return None  # another rebuild always came first

    class NoCopies:
        def create(self, generation: int) -> None: ...
        def drop(self, generation: int) -> None: ...

    class NoArchive:
        def replay(self, replay_name: str, until: datetime) -> None: ...
        def replay_state(self, replay_name: str) -> str:
            return "FAILED"

    class NoQueue:
        def pending(self) -> int:
            return 0

    def with_read_model(runtime: Runtime) -> State:
        history = Projection("ride-history", NoPointers())
        never_built = Rebuild(history, NoPointers(), NoCopies(), NoArchive(), NoQueue(), owner="test-svc")
        runtime.projections.add(history, lambda: never_built)
        return wire(runtime)

    with TestClient(_service().app(), headers=OPS) as client:
        assert client.get("/v1/ops/projections").json() == {"service": NAME, "projections": []}
    with TestClient(_service(with_read_model).app(), headers=OPS) as client:
        listed = client.get("/v1/ops/projections").json()["projections"]
        assert [(p["name"], p["state"], p["lastRebuild"]) for p in listed] == [("ride-history", "LIVE", None)]
        assert client.get("/v1/ops/projections", headers={"X-Ops-Token": "wrong"}).status_code == 401
        unknown = client.post("/v1/ops/projections/fleet/rebuild")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "projection_not_found")
        taken = client.post("/v1/ops/projections/ride-history/rebuild")
        assert (taken.status_code, taken.json()["error"]["code"]) == (409, "rebuild_in_progress")


def test_metrics_need_the_ops_token_and_show_the_wirings_messaging(
    configured: list[tuple[str, str, str]],
) -> None:
    class Messaging(FakeMessaging):
        def dead_letter_depths(self) -> dict[str, int]:
            return {"acr-test-svc-events-dlq": 2}

    def with_messaging(runtime: Runtime) -> State:
        runtime.messaging = Messaging()
        return wire(runtime)

    token = OPS["X-Ops-Token"]
    with TestClient(_service(with_messaging).app()) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer not-the-token"}).status_code == 401
        assert client.get("/metrics", headers=OPS).status_code == 200
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})  # as Prometheus
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    assert {"acr_events_published", "acr_saga_step_latency_seconds", "acr_messages_dead_lettered"} <= set(
        families
    )
    assert [s.labels for s in families["acr_service_info"].samples] == [{"service": NAME}]
    assert [(s.labels, s.value) for s in families["acr_dlq_messages"].samples] == [
        ({"queue": "acr-test-svc-events-dlq"}, 2)
    ]


def test_extend_adds_what_only_this_app_has(configured: list[tuple[str, str, str]]) -> None:
    def pages(app: FastAPI) -> None:
        @app.get("/index.html")
        def index() -> dict[str, str]:
            return {"page": "index"}

    service = Service(NAME, wire, routers=[router], extend=pages)
    with TestClient(service.app()) as client:
        assert client.get("/index.html").json() == {"page": "index"}
        assert client.get("/healthz").status_code == 200


# --- fault windows ------------------------------------------------------------------------------------------
@pytest.fixture
def own_process_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh process-wide ``Faults`` for the test (its windows do not outlive it)."""
    monkeypatch.setattr(faults, "_PROCESS_FAULTS", None)


EMULATED = Settings(aws_endpoint_url="http://127.0.0.1:4566")


def test_a_fault_window_is_opened_and_listed_on_every_service(
    configured: list[tuple[str, str, str]], own_process_faults: None
) -> None:
    with TestClient(_service().app(settings=EMULATED), headers=OPS) as client:
        assert client.get("/v1/ops/faults").json() == {"faults": []}
        opened = client.post(
            "/v1/ops/faults", json={"fault": "eventbridge.throttle", "rate": 1, "seconds": 60}
        )
        assert opened.status_code == 202
        window = opened.json()
        assert set(window) == {"faultId", "fault", "rate", "until"}
        assert (window["fault"], window["rate"]) == ("eventbridge.throttle", 1)
        assert 59 < (clock.parse(window["until"]) - clock.now()).total_seconds() <= 60
        assert client.get("/v1/ops/faults").json() == {"faults": [window]}
    process = faults.process_faults(EMULATED.faults, EMULATED.faults_seed)
    assert process.hit("eventbridge.throttle") and not process.hit("sns.failure")  # the process's own faults


@pytest.mark.parametrize(
    "body",
    [
        {"fault": "publish.nope", "rate": 1, "seconds": 60},
        {"fault": "sns.failure", "rate": 1.5, "seconds": 60},
        {"fault": "sns.failure", "rate": -0.1, "seconds": 60},
        {"fault": "sns.failure", "rate": "0.5", "seconds": 60},
        {"fault": "sns.failure", "rate": True, "seconds": 60},
        {"fault": "sns.failure", "rate": 1, "seconds": 0},
        {"fault": "sns.failure", "rate": 1, "seconds": 601},
        {"fault": "sns.failure", "rate": 1},
    ],
)
def test_an_unknown_fault_or_bad_numbers_are_refused(
    body: dict[str, Any], configured: list[tuple[str, str, str]], own_process_faults: None
) -> None:
    with TestClient(_service().app(settings=EMULATED), headers=OPS) as client:
        response = client.post("/v1/ops/faults", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_error")
        assert client.get("/v1/ops/faults").json() == {"faults": []}


def test_no_fault_window_can_be_opened_in_aws_mode(
    configured: list[tuple[str, str, str]], own_process_faults: None
) -> None:
    with TestClient(
        _service().app(settings=Settings(aws_endpoint_url="", service_key=new_private_key())), headers=OPS
    ) as client:
        opened = client.post("/v1/ops/faults", json={"fault": "sns.failure", "rate": 1, "seconds": 60})
        assert (opened.status_code, opened.json()["error"]["code"]) == (404, "not_found")
        assert client.get("/v1/ops/faults").status_code == 404
