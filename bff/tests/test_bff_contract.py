"""The DeadLetters port's contract, run against the in-memory fake AND the SQS adapter (in-process moto):
what ``/ops/dlq`` relies on holds for both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from bff_fakes import FakeDeadLetters
from moto import mock_aws

from acr.errors import NotFound, ValidationFailed
from bff.adapters.dlq import SqsDeadLetters
from bff.ports import DeadLetters

PAYMENTS_DLQ = "acr-reward-payments-dlq"
RIDE_UPDATES_DLQ = "acr-bff-ride-updates-dlq.fifo"


@dataclass
class Backend:
    port: DeadLetters
    dead_letter: Callable[[str, str | None], None]  # one message into a DLQ, with its reason (or none)


def _fake() -> Backend:
    fake = FakeDeadLetters(depths={})

    def dead_letter(queue: str, reason: str | None) -> None:
        reasons = fake.depths.setdefault(queue, {})
        reasons[reason or "unknown"] = reasons.get(reason or "unknown", 0) + 1

    return Backend(fake, dead_letter)


def _sqs() -> Backend:
    sqs = boto3.client("sqs", region_name="us-east-1")

    def create(name: str) -> str:
        fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if name.endswith(".fifo") else {}
        return sqs.create_queue(QueueName=name, Attributes=fifo)["QueueUrl"]

    def dead_letter(queue: str, reason: str | None) -> None:
        create(queue.replace("-dlq", "", 1))
        attributes = {"reason": {"DataType": "String", "StringValue": reason}} if reason else {}
        message: dict[str, Any] = {
            "QueueUrl": create(queue),
            "MessageBody": "{}",
            "MessageAttributes": attributes,
        }
        if queue.endswith(".fifo"):
            message |= {"MessageGroupId": "poison", "MessageDeduplicationId": str(id(message))}
        sqs.send_message(**message)

    return Backend(SqsDeadLetters(sqs), dead_letter)


@pytest.fixture(params=["memory", "sqs"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield _fake()
        return
    with mock_aws():
        yield _sqs()


def test_each_dlq_with_its_depth_and_reasons(backend: Backend) -> None:
    for reason in ("unknown_type", "unknown_type", "schema_invalid"):
        backend.dead_letter(PAYMENTS_DLQ, reason)
    backend.dead_letter(RIDE_UPDATES_DLQ, None)
    assert asyncio.run(backend.port.queues()) == [
        {"queue": RIDE_UPDATES_DLQ, "depth": 1, "reasons": {"unknown": 1}},
        {"queue": PAYMENTS_DLQ, "depth": 3, "reasons": {"unknown_type": 2, "schema_invalid": 1}},
    ]


def test_a_redrive_empties_the_dlq(backend: Backend) -> None:
    for _ in range(2):
        backend.dead_letter(PAYMENTS_DLQ, "unknown_type")
    assert asyncio.run(backend.port.redrive(PAYMENTS_DLQ)) == {"queue": PAYMENTS_DLQ, "redriven": 2}
    assert asyncio.run(backend.port.queues()) == [{"queue": PAYMENTS_DLQ, "depth": 0, "reasons": {}}]
    assert asyncio.run(backend.port.redrive(PAYMENTS_DLQ)) == {"queue": PAYMENTS_DLQ, "redriven": 0}


def test_an_unknown_queue_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        asyncio.run(backend.port.redrive("acr-nobody-events-dlq"))


def test_a_producer_dlq_is_left_to_its_relay(backend: Backend) -> None:
    with pytest.raises(ValidationFailed):
        asyncio.run(backend.port.redrive("acr-payment-producer-dlq"))
