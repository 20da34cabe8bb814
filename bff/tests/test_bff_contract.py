"""The DeadLetters port's contract, run against the in-memory fake AND the real adapter: reward's own kernel
routes (its app on in-process moto, reached over HTTP) and the BFF's own per-replica DLQs (its messaging, in
process). What ``/ops/dlq`` relies on holds for both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from bff_fakes import FakeDeadLetters
from fastapi.testclient import TestClient

from acr.errors import ServiceError
from acr.loops import Loops
from acr.runtime import Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
from acr.topology import discover
from acr_testkit.aws import client, in_process_messaging
from acr_testkit.identity import credentials_of, settings_for
from bff.adapters.dlq import ServiceDeadLetters
from bff.adapters.http import ServiceHttp
from bff.ports import DeadLetters

REWARD_DLQ = "acr-reward-events-dlq"
PUSH_DLQ = "acr-bff-ride-updates-dlq-bff-1.fifo"  # this BFF replica's copy
TOPOLOGIES = {t.service: t for t in discover()}


@dataclass
class Backend:
    port: DeadLetters
    dead_letter: Callable[[str, str, str | None], None]  # one message into a service's DLQ, with its reason


def _fake() -> Backend:
    fake = FakeDeadLetters(("reward",), depths={})

    def dead_letter(service: str, queue: str, reason: str | None) -> None:
        reasons = fake.depths.setdefault(service, {}).setdefault(queue, {})
        reasons[reason or "unknown"] = reasons.get(reason or "unknown", 0) + 1

    return Backend(fake, dead_letter)


def _through(app: TestClient) -> httpx.AsyncClient:
    """An HTTP client whose requests ``app`` answers."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = app.request(
            request.method, request.url.raw_path.decode(), headers=request.headers, content=request.content
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _dead_letterer(messagings: dict[str, Messaging]) -> Callable[[str, str, str | None], None]:
    def dead_letter(service: str, queue: str, reason: str | None) -> None:
        messaging = messagings[service]
        message: dict[str, Any] = {"QueueUrl": messaging.queue_url(queue), "MessageBody": "{}"}
        if reason:
            message["MessageAttributes"] = {"reason": {"DataType": "String", "StringValue": reason}}
        if queue.endswith(".fifo"):
            message |= {"MessageGroupId": "poison", "MessageDeduplicationId": str(id(message))}
        messaging.sqs.send_message(**message)

    return dead_letter


@pytest.fixture(params=["memory", "services"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield _fake()
        return
    with in_process_messaging(TOPOLOGIES["reward"]) as reward:
        bff = Messaging(
            TOPOLOGIES["bff"], Settings(aws_endpoint_url="", replica="bff-1"), Loops(), make_client=client
        )

        def wire(runtime: Runtime) -> None:
            runtime.messaging = reward

        with TestClient(Service("reward", wire).app(settings=settings_for("reward"))) as app:
            https = {"reward": ServiceHttp(_through(app), "reward", "http://reward", credentials_of("bff"))}
            yield Backend(
                ServiceDeadLetters("bff", bff, https), _dead_letterer({"reward": reward, "bff": bff})
            )


def _waiting(port: DeadLetters, service: str) -> list[dict[str, Any]]:
    """``service``'s DLQs that hold messages (each service also lists its empty ones)."""
    return [q for q in asyncio.run(port.queues(service)) if q["depth"]]


def test_each_services_dlqs_with_their_depth_and_reasons(backend: Backend) -> None:
    for reason in ("unknown_type", "unknown_type", "schema_invalid"):
        backend.dead_letter("reward", REWARD_DLQ, reason)
    backend.dead_letter("bff", PUSH_DLQ, None)
    assert backend.port.services[0] == "bff" and "reward" in backend.port.services
    assert _waiting(backend.port, "reward") == [
        {"queue": REWARD_DLQ, "depth": 3, "reasons": {"unknown_type": 2, "schema_invalid": 1}}
    ]
    assert _waiting(backend.port, "bff") == [{"queue": PUSH_DLQ, "depth": 1, "reasons": {"unknown": 1}}]


def test_a_redrive_by_the_owning_service_empties_the_dlq(backend: Backend) -> None:
    for _ in range(2):
        backend.dead_letter("reward", REWARD_DLQ, "unknown_type")
    backend.dead_letter("bff", PUSH_DLQ, "unparseable")
    assert asyncio.run(backend.port.redrive("reward", REWARD_DLQ)) == {"queue": REWARD_DLQ, "redriven": 2}
    assert asyncio.run(backend.port.redrive("bff", PUSH_DLQ)) == {"queue": PUSH_DLQ, "redriven": 1}
    assert _waiting(backend.port, "reward") == [] and _waiting(backend.port, "bff") == []
    assert asyncio.run(backend.port.redrive("reward", REWARD_DLQ)) == {"queue": REWARD_DLQ, "redriven": 0}


@pytest.mark.parametrize(
    ("service", "queue"),
    [("reward", "acr-nobody-events-dlq"), ("reward", PUSH_DLQ), ("bff", REWARD_DLQ)],
)
def test_a_queue_the_service_does_not_have_is_not_found(backend: Backend, service: str, queue: str) -> None:
    backend.dead_letter("reward", REWARD_DLQ, "unknown_type")
    backend.dead_letter("bff", PUSH_DLQ, "unparseable")
    with pytest.raises(ServiceError) as refused:
        asyncio.run(backend.port.redrive(service, queue))
    assert refused.value.status == 404
    assert len(_waiting(backend.port, "reward") + _waiting(backend.port, "bff")) == 2
