"""The chaos controls ``/ops/chaos``: absent unless chaos is on (and always in AWS mode), guarded by the ops
token, validated to the letter of docs/api.md; outages go to the fault proxy, fault windows to the
services. The HTTP adapter is pinned to the fake by running both against the real control API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bff_fakes import OPS, SETTINGS, FakeChaos, error_of
from fastapi.testclient import TestClient

from acr.service import Runtime
from acr.settings import SERVICE_PORTS
from acr_stack.control import ControlServer
from acr_stack.faultproxy import FaultProxy
from acr_stack.runner import free_port
from bff.adapters.http import EveryReplica, HttpChaos, ServiceHttp
from bff.bootstrap import SERVICE, assemble
from bff.ports import Chaos
from bff.state import BffState, Dependencies

SERVICES = tuple(SERVICE_PORTS)
PATHS = (("POST", "/ops/chaos/outages"), ("POST", "/ops/chaos/faults"), ("GET", "/ops/chaos"))
OUTAGE = {"target": "aws", "mode": "refuse", "seconds": 10}
FAULT = {"service": "payment", "fault": "gateway.unknown", "rate": 1, "seconds": 60}


def app_client(deps: Dependencies, **settings: Any) -> TestClient:
    def wire(runtime: Runtime) -> BffState:
        return assemble(runtime, deps)

    return TestClient(SERVICE.app(settings=SETTINGS.model_copy(update=settings), wire=wire))


@pytest.fixture
def chaos(deps: Dependencies) -> FakeChaos:
    return deps.chaos  # type: ignore[return-value]


@pytest.fixture
def on(deps: Dependencies) -> Iterator[TestClient]:
    """The BFF with chaos on (the fake stack's endpoint is the default emulator's)."""
    with app_client(deps, chaos=True) as client:
        yield client


def call(client: TestClient, method: str, path: str, body: Any = None, headers: Any = None) -> httpx.Response:
    return client.request(method, path, json=body, headers=OPS if headers is None else headers)


@pytest.mark.parametrize("settings", [{}, {"chaos": True, "aws_endpoint_url": ""}], ids=["off", "aws-mode"])
def test_the_controls_do_not_exist_unless_chaos_is_on_and_never_in_aws_mode(
    deps: Dependencies, settings: dict[str, Any]
) -> None:
    with app_client(deps, **settings) as client:
        for method, path in PATHS:
            for headers in (OPS, {}):  # 404 before the token is looked at, as for any unknown route
                error_of(call(client, method, path, {"bad": 1}, headers), 404, "not_found")
                error_of(call(client, method, path, OUTAGE, headers), 404, "not_found")
    assert deps.chaos.opened_outages == [] and deps.chaos.windows == {}  # type: ignore[attr-defined]


def test_the_dashboard_asks_for_the_windows_only_when_the_controls_exist(
    deps: Dependencies, on: TestClient
) -> None:
    assert 'data-chaos="on"' in on.get("/dashboard").text
    for settings in ({}, {"chaos": True, "aws_endpoint_url": ""}):
        with app_client(deps, **settings) as client:
            page = client.get("/dashboard")
            assert (
                page.status_code == 200
                and 'data-chaos="off"' in page.text
                and 'data-chaos="on"' not in page.text
            )


def test_the_controls_need_the_ops_token(on: TestClient) -> None:
    for method, path in PATHS:
        error_of(call(on, method, path, OUTAGE, {}), 401, "unauthorized")
        error_of(call(on, method, path, OUTAGE, {"X-Ops-Token": "wrong-token"}), 401, "unauthorized")


def test_an_outage_is_opened_on_the_fault_proxy_and_listed(on: TestClient, chaos: FakeChaos) -> None:
    answer = call(on, "POST", "/ops/chaos/outages", OUTAGE)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"outageId", "target", "mode", "until"}
    assert (body["target"], body["mode"]) == ("aws", "refuse")
    latency = {"target": "payment", "mode": "latency", "seconds": 30, "latencyMs": 400}
    assert call(on, "POST", "/ops/chaos/outages", latency).status_code == 202
    assert [o["target"] for o in chaos.opened_outages] == ["aws", "payment"]
    assert "latencyMs" not in chaos.opened_outages[0] and chaos.opened_outages[1]["latencyMs"] == 400
    listed = call(on, "GET", "/ops/chaos").json()
    assert [o["outageId"] for o in listed["outages"]] == [
        body["outageId"],
        chaos.opened_outages[1]["outageId"],
    ]
    assert listed["faults"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"target": "aws", "mode": "refuse"},
        {"target": "aws", "mode": "refuse", "seconds": 0},
        {"target": "aws", "mode": "refuse", "seconds": 601},
        {"target": "aws", "mode": "refuse", "seconds": "10"},
        {"target": "the-moon", "mode": "refuse", "seconds": 10},
        {"target": "aws", "mode": "flood", "seconds": 10},
        {"target": "aws", "mode": "latency", "seconds": 10},
        {"target": "aws", "mode": "latency", "seconds": 10, "latencyMs": 0},
        {"target": "aws", "mode": "refuse", "seconds": 10, "latencyMs": 100},
        {"target": "aws", "mode": "refuse", "seconds": 10, "extra": True},
    ],
)
def test_an_invalid_outage_is_a_validation_error(
    on: TestClient, chaos: FakeChaos, body: dict[str, Any]
) -> None:
    error_of(call(on, "POST", "/ops/chaos/outages", body), 422, "validation_error")
    assert chaos.opened_outages == []


def test_without_a_fault_proxy_an_outage_cannot_be_opened_and_none_is_listed(
    on: TestClient, chaos: FakeChaos
) -> None:
    chaos.proxied = False
    error_of(call(on, "POST", "/ops/chaos/outages", OUTAGE), 503, "dependency_unavailable")
    assert call(on, "GET", "/ops/chaos").json() == {"outages": [], "faults": []}


def test_a_fault_window_on_one_service_answers_its_id_and_is_listed(on: TestClient, chaos: FakeChaos) -> None:
    answer = call(on, "POST", "/ops/chaos/faults", FAULT)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"faultId": "f_1", "until": "2030-01-01T00:01:00.000Z"}
    assert chaos.windows == {
        "payment": [{"fault": "gateway.unknown", "rate": 1, "seconds": 60} | answer.json()]
    }
    faults = call(on, "GET", "/ops/chaos").json()["faults"]
    assert faults == [
        {
            "service": "payment",
            "faultId": "f_1",
            "fault": "gateway.unknown",
            "rate": 1,
            "seconds": 60,
            "until": "2030-01-01T00:01:00.000Z",
        }
    ]


def test_a_fault_window_on_all_opens_one_on_every_service_under_one_id(
    on: TestClient, chaos: FakeChaos
) -> None:
    body = {"service": "all", "fault": "eventbridge.throttle", "rate": 0.5, "seconds": 60}
    answer = call(on, "POST", "/ops/chaos/faults", body)
    assert answer.status_code == 202, answer.text
    fault_id = answer.json()["faultId"]
    assert set(answer.json()) == {"faultId", "until"} and fault_id.startswith("fault_")
    assert set(chaos.windows) == set(SERVICES)
    faults = call(on, "GET", "/ops/chaos").json()["faults"]
    assert sorted(f["service"] for f in faults) == sorted(SERVICES)
    assert {f["faultId"] for f in faults} == {fault_id}
    assert len({f["serviceFaultId"] for f in faults}) == len(SERVICES)
    assert {(f["fault"], f["rate"]) for f in faults} == {("eventbridge.throttle", 0.5)}


def test_a_service_that_does_not_answer_is_named_and_the_others_get_the_window(
    on: TestClient, chaos: FakeChaos
) -> None:
    chaos.down.add("reward")
    answer = call(on, "POST", "/ops/chaos/faults", FAULT | {"service": "all"})
    assert answer.status_code == 202 and answer.json()["unavailable"] == ["reward"]
    listed = call(on, "GET", "/ops/chaos").json()["faults"]
    assert sorted(f["service"] for f in listed) == sorted(set(SERVICES) - {"reward"})
    error_of(
        call(on, "POST", "/ops/chaos/faults", FAULT | {"service": "reward"}), 503, "dependency_unavailable"
    )
    chaos.down.update(SERVICES)
    error_of(call(on, "POST", "/ops/chaos/faults", FAULT | {"service": "all"}), 503, "dependency_unavailable")
    assert call(on, "GET", "/ops/chaos").json()["faults"] == []


def test_a_service_refusing_a_window_is_passed_through(on: TestClient, chaos: FakeChaos) -> None:
    chaos.refusing.add("payment")
    error_of(call(on, "POST", "/ops/chaos/faults", FAULT), 422, "validation_error")


@pytest.mark.parametrize(
    "change",
    [
        {"service": "nobody"},
        {"fault": "publish.typo"},
        {"rate": 1.5},
        {"rate": -0.1},
        {"rate": "1"},
        {"seconds": 0},
        {"seconds": 601},
        {"extra": 1},
    ],
)
def test_an_invalid_fault_window_is_a_validation_error(
    on: TestClient, chaos: FakeChaos, change: dict[str, Any]
) -> None:
    error_of(call(on, "POST", "/ops/chaos/faults", FAULT | change), 422, "validation_error")
    missing = {k: v for k, v in FAULT.items() if k != "rate"}
    error_of(call(on, "POST", "/ops/chaos/faults", missing), 422, "validation_error")
    assert chaos.windows == {}


# --- the HTTP adapter and the fake, against the fault proxy's real control API ---------------------------
@pytest.fixture
def control_url() -> Iterator[str]:
    proxy = FaultProxy(free_port(), {s: free_port() for s in SERVICES})
    proxy.start()
    server = ControlServer(proxy, free_port())
    server.start()
    yield server.url
    server.stop()
    proxy.stop()


def outage_contract(port: Chaos) -> None:
    async def run() -> None:
        opened = await port.open_outage(
            {"target": "payment", "mode": "latency", "seconds": 5, "latencyMs": 100}
        )
        assert {"outageId", "target", "mode", "until"} <= set(opened)
        assert (opened["target"], opened["mode"]) == ("payment", "latency")
        listed = await port.outages()
        assert [o["outageId"] for o in listed] == [opened["outageId"]]
        assert listed[0]["counts"] == {"refused": 0, "reset": 0, "held": 0, "delayed": 0}

    asyncio.run(run())


def test_the_fake_keeps_the_outage_contract() -> None:
    outage_contract(FakeChaos())


def test_the_http_adapter_keeps_the_outage_contract_with_the_real_control_api(control_url: str) -> None:
    async def adapter() -> HttpChaos:
        return HttpChaos(ServiceHttp(httpx.AsyncClient(), "fault-proxy", control_url), {}, {})

    outage_contract(asyncio.run(adapter()))


def test_the_http_adapter_opens_a_fault_window_in_every_replica_and_lists_them_through_the_service() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.content))
        if request.method == "POST":
            return httpx.Response(
                202, json={"faultId": "f9", "fault": "sns.failure", "rate": 1, "until": "x"}
            )
        return httpx.Response(200, json={"faults": [{"faultId": "f9"}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    replicas = [ServiceHttp(client, "reward", f"http://reward-{n}") for n in (1, 2)]
    port = HttpChaos(
        None, {"reward": ServiceHttp(client, "reward", "http://reward")}, {"reward": EveryReplica(replicas)}
    )
    window = {"fault": "sns.failure", "rate": 1, "seconds": 60}
    assert asyncio.run(port.open_fault("reward", window))["faultId"] == "f9"
    assert asyncio.run(port.faults("reward")) == [{"faultId": "f9"}]
    assert sorted((m, u) for m, u, _ in seen) == [
        ("GET", "http://reward/v1/ops/faults"),
        ("POST", "http://reward-1/v1/ops/faults"),
        ("POST", "http://reward-2/v1/ops/faults"),
    ]
    assert seen[0][2] == b'{"fault":"sns.failure","rate":1,"seconds":60}'
    assert asyncio.run(port.outages()) == []
