from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from acr.errors import NotFound
from acr.identity import ServiceCredentials
from acr_testkit.identity import OPS_TOKEN, PUBLIC_KEYS, credentials_of
from bff.adapters.dlq import SqsDeadLetters, source_queue
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


@mock_aws
def test_dlq_depth_reasons_and_redrive() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    source = sqs.create_queue(QueueName="acr-reward-payments")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="acr-reward-payments-dlq")["QueueUrl"]
    fifo_source = sqs.create_queue(
        QueueName="acr-bff-ride-updates.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    fifo_dlq = sqs.create_queue(
        QueueName="acr-bff-ride-updates-dlq.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    sqs.create_queue(QueueName="acr-unrelated")
    for reason in ("unknown_type", "unknown_type", "schema_invalid"):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=f'{{"r": "{reason}"}}',
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "sourceQueue": {"DataType": "String", "StringValue": "acr-reward-payments"},
            },
        )
    sqs.send_message(
        QueueUrl=fifo_dlq, MessageBody="{}", MessageGroupId="poison", MessageDeduplicationId="m1"
    )
    dead = SqsDeadLetters(sqs)

    queues = {q["queue"]: q for q in asyncio.run(dead.queues())}
    assert set(queues) == {"acr-reward-payments-dlq", "acr-bff-ride-updates-dlq.fifo"}
    assert queues["acr-reward-payments-dlq"]["depth"] == 3
    assert queues["acr-reward-payments-dlq"]["reasons"] == {"unknown_type": 2, "schema_invalid": 1}
    assert queues["acr-bff-ride-updates-dlq.fifo"]["reasons"] == {"unknown": 1}

    assert asyncio.run(dead.redrive("acr-reward-payments-dlq")) == {
        "queue": "acr-reward-payments-dlq",
        "redriven": 3,
    }
    assert asyncio.run(dead.redrive("acr-bff-ride-updates-dlq.fifo"))["redriven"] == 1
    moved = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert len(moved) == 3 and all("reason" not in m.get("MessageAttributes", {}) for m in moved)
    assert len(sqs.receive_message(QueueUrl=fifo_source, MaxNumberOfMessages=10).get("Messages", [])) == 1
    with pytest.raises(NotFound) as error:
        asyncio.run(dead.redrive("acr-unrelated"))
    assert error.value.status == 404


def test_source_queue_naming() -> None:
    assert source_queue("acr-x-q-dlq", {}) == "acr-x-q"
    assert source_queue("acr-x-q-dlq.fifo", {}) == "acr-x-q.fifo"
    assert source_queue("acr-x-q-dlq", {"sourceQueue": {"StringValue": "acr-y"}}) == "acr-y"
