"""The fault proxy's control API: opens windows, lists the open ones, shows each one's counts, and
refuses what is not a valid outage with the services' error shape."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from acr import clock
from acr_stack.control import ControlServer
from acr_stack.faultproxy import FaultProxy
from acr_stack.runner import free_port


@pytest.fixture
def control() -> Iterator[str]:
    proxy = FaultProxy(free_port(), {"payment": free_port(), "reward": free_port()})  # nothing behind
    proxy.start()
    server = ControlServer(proxy, free_port())
    server.start()
    yield server.url
    server.stop()
    proxy.stop()


def test_an_outage_opened_is_listed_while_open_and_kept_with_its_counts(control: str) -> None:
    before = clock.now()
    opened = httpx.post(f"{control}/outages", json={"target": "payment", "mode": "refuse", "seconds": 1})
    assert opened.status_code == 202, opened.text
    outage = opened.json()
    assert outage["outageId"].startswith("outage_")
    assert (outage["target"], outage["mode"], outage["open"], outage["latencyMs"]) == (
        "payment",
        "refuse",
        True,
        None,
    )
    assert 0.9 <= (clock.parse(outage["until"]) - before).total_seconds() <= 1.5
    assert outage["counts"] == {"refused": 0, "reset": 0, "held": 0, "delayed": 0}
    assert httpx.get(f"{control}/outages").json() == {"outages": [outage]}
    latency = httpx.post(
        f"{control}/outages", json={"target": "aws", "mode": "latency", "seconds": 60, "latencyMs": 50}
    ).json()
    assert [o["outageId"] for o in httpx.get(f"{control}/outages").json()["outages"]] == [
        outage["outageId"],
        latency["outageId"],
    ]
    found = httpx.get(f"{control}/outages/{outage['outageId']}").json()
    assert found["outageId"] == outage["outageId"]


def test_a_closed_outage_leaves_the_list_but_is_kept(control: str) -> None:
    outage = httpx.post(
        f"{control}/outages", json={"target": "aws", "mode": "blackhole", "seconds": 1}
    ).json()
    time.sleep(1.1)
    assert httpx.get(f"{control}/outages").json() == {"outages": []}
    kept = httpx.get(f"{control}/outages", params={"closed": "true"}).json()["outages"]
    assert [(o["outageId"], o["open"]) for o in kept] == [(outage["outageId"], False)]
    assert httpx.get(f"{control}/outages/{outage['outageId']}").json()["open"] is False


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"target": "aws", "mode": "refuse", "seconds": 0}, 422, "validation_error"),
        ({"target": "car-simulator", "mode": "refuse", "seconds": 5}, 422, "validation_error"),
        ({"target": "aws", "mode": "latency", "seconds": 5}, 422, "validation_error"),
        (b"{not json", 400, "bad_request"),
    ],
)
def test_what_is_not_a_valid_outage_is_refused(control: str, body: object, status: int, code: str) -> None:
    if isinstance(body, bytes):
        answer = httpx.post(f"{control}/outages", content=body)
    else:
        answer = httpx.post(f"{control}/outages", json=body)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]
    assert httpx.get(f"{control}/outages").json() == {"outages": []}


def test_unknown_paths_and_outages_are_404(control: str) -> None:
    assert httpx.get(f"{control}/outages/outage_nope").json()["error"]["code"] == "outage_not_found"
    assert httpx.get(f"{control}/nothing").status_code == 404
    assert httpx.post(f"{control}/nothing", json={}).status_code == 404
    assert httpx.get(f"{control}/healthz").json()["status"] == "ok"
