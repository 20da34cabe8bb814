from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from acr.errors import NotFound
from acr.identity import ServiceCredentials
from acr_testkit.identity import OPS_TOKEN, PUBLIC_KEYS, credentials_of
from bff.adapters.dlq import ServiceDeadLetters
from bff.adapters.http import EveryReplica, HttpPayments, HttpRideManager, ServiceHttp
from bff.errors import ServiceUnavailable, UpstreamError
from bff.redaction import RedactTokens


def manager(handler: Any) -> HttpRideManager:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpRideManager(ServiceHttp(client, "ride-manager", "http://rm", credentials_of("bff")))


def verified(request: httpx.Request, callee: str) -> tuple[str, str | None]:
    """Who ``callee`` would see calling: the caller's service and the rider it acts for."""
    caller = ServiceCredentials(callee, public_keys=PUBLIC_KEYS).verify(
        request.headers["Authorization"].removeprefix("Bearer ")
    )
    return caller.service, caller.rider


def test_http_success_and_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"rideId": "ride_1", "version": 1})

    ride = asyncio.run(manager(handler).book("rdr_1", "q1", "key-1"))
    assert ride == {"rideId": "ride_1", "version": 1}
    assert seen[0].url.path == "/v1/rides" and seen[0].headers["Idempotency-Key"] == "key-1"
    assert json.loads(seen[0].content) == {"quoteId": "q1"}  # the rider is in the token only
    assert verified(seen[0], "ride-manager") == ("bff", "rdr_1") and "X-Ops-Token" not in seen[0].headers


def test_ops_calls_carry_the_ops_token_and_a_token_for_the_bff_itself() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"rides": []})

    asyncio.run(manager(handler).ops_rides(active=True))
    assert seen[0].url.path == "/v1/ops/rides" and seen[0].headers["X-Ops-Token"] == OPS_TOKEN
    assert verified(seen[0], "ride-manager") == ("bff", None)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_service_credential_is_the_bff_s_fault_a_503(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": "unauthorized", "message": "no"}})

    with pytest.raises(ServiceUnavailable):
        asyncio.run(manager(handler).ride("rdr_1", "ride_1"))


def test_http_4xx_passes_through() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": {"code": "quote_expired", "message": "too late"}})

    with pytest.raises(UpstreamError) as error:
        asyncio.run(manager(handler).book("rdr_1", "q1", "k"))
    assert (error.value.status, error.value.code, error.value.message) == (409, "quote_expired", "too late")


@pytest.mark.parametrize("outcome", ["connect", "timeout", "500", "not-json"])
def test_http_failures_are_503(outcome: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if outcome == "connect":
            raise httpx.ConnectError("refused")
        if outcome == "timeout":
            raise httpx.ReadTimeout("slow")
        if outcome == "500":
            return httpx.Response(500, text="boom")
        return httpx.Response(200, text="<html>")

    with pytest.raises(ServiceUnavailable):
        asyncio.run(manager(handler).ride("rdr_1", "ride_1"))


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        ({"p1": 200, "p2": 200}, "both"),
        ({"p1": 200, "p2": "down"}, "one"),
        ({"p1": "down", "p2": "down"}, ServiceUnavailable),
        ({"p1": 200, "p2": 400}, UpstreamError),
    ],
)
def test_a_switch_held_in_memory_is_set_on_every_replica_that_answers(
    answers: dict[str, int | str], outcome: str | type[Exception]
) -> None:
    """The gateway's mode lives in each payment process: the BFF sets it on every replica, not on the one
    the entry point happens to pick."""
    reached: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers[request.url.host]
        if answer == "down":
            raise httpx.ConnectError("refused")
        reached.append(request.url.host)
        if answer == 400:
            return httpx.Response(400, json={"error": {"code": "bad_request", "message": "unknown mode"}})
        return httpx.Response(200, json={"mode": json.loads(request.content)["mode"]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    replicas = EveryReplica([ServiceHttp(client, "payment", f"http://{host}") for host in answers])
    payments = HttpPayments(ServiceHttp(client, "payment", "http://entry"), replicas)
    if isinstance(outcome, type):
        with pytest.raises(outcome):
            asyncio.run(payments.set_gateway("decline"))
        return
    assert asyncio.run(payments.set_gateway("decline")) == {"mode": "decline"}
    assert sorted(reached) == (["p1", "p2"] if outcome == "both" else ["p1"])


def test_path_segments_are_escaped() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"versions": []})

    asyncio.run(manager(handler).versions("rdr_1", "a/../b", 3))
    assert paths == ["/v1/rides/a%2F..%2Fb/versions?afterVersion=3"]


def test_token_never_reaches_server_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/ws?token=abc.def&x=1"),
        None,
    )
    RedactTokens().filter(record)
    assert "abc.def" not in record.getMessage() and "token=***" in record.getMessage()


class OwnQueues:
    """The BFF's own messaging: its DLQs, or an SQS that does not answer."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.redriven: list[str] = []

    def dead_letter_queues(self) -> list[dict[str, object]]:
        if self.down:
            raise ConnectionError("sqs down")
        return [{"queue": "acr-bff-ride-eta-dlq-bff-1", "depth": 1, "reasons": {"unparseable": 1}}]

    def redrive_dead_letter_queue(self, queue: str) -> dict[str, object]:
        if not queue.startswith("acr-bff-"):
            raise NotFound(f"{queue} is not a dead-letter queue of bff")
        self.redriven.append(queue)
        return {"queue": queue, "redriven": 1}


def test_each_service_is_asked_for_its_own_dlqs_and_the_bff_reads_its_own_in_process() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(
                200, json={"service": "reward", "queues": [{"queue": "acr-reward-events-dlq"}]}
            )
        if "acr-nobody" in request.url.path:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "not its queue"}})
        return httpx.Response(200, json={"queue": "acr-reward-events-dlq", "redriven": 2})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    own = OwnQueues()
    dead = ServiceDeadLetters(
        "bff", own, {"reward": ServiceHttp(client, "reward", "http://rw", credentials_of("bff"))}
    )
    assert dead.services == ("bff", "reward")
    assert asyncio.run(dead.queues("reward")) == [{"queue": "acr-reward-events-dlq"}]
    assert asyncio.run(dead.redrive("reward", "acr-reward-events-dlq"))["redriven"] == 2
    with pytest.raises(UpstreamError) as refused:
        asyncio.run(dead.redrive("reward", "acr-nobody/x"))
    assert refused.value.status == 404
    assert [(r.method, r.url.raw_path.decode()) for r in seen] == [
        ("GET", "/v1/ops/dlq"),
        ("POST", "/v1/ops/dlq/acr-reward-events-dlq/redrive"),
        ("POST", "/v1/ops/dlq/acr-nobody%2Fx/redrive"),  # one path segment, whatever the name holds
    ]
    assert all(r.headers["X-Ops-Token"] == OPS_TOKEN for r in seen)
    assert asyncio.run(dead.queues("bff"))[0]["queue"] == "acr-bff-ride-eta-dlq-bff-1"
    assert asyncio.run(dead.redrive("bff", "acr-bff-ride-eta-dlq-bff-1"))["redriven"] == 1
    assert own.redriven == ["acr-bff-ride-eta-dlq-bff-1"]
    with pytest.raises(NotFound):
        asyncio.run(dead.redrive("bff", "acr-reward-events-dlq"))


def test_the_bffs_own_dlqs_unreadable_is_the_bff_unavailable() -> None:
    dead = ServiceDeadLetters("bff", OwnQueues(down=True), {})
    with pytest.raises(ServiceUnavailable) as error:
        asyncio.run(dead.queues("bff"))
    assert error.value.status == 503
