"""Attacks on the event sources (#14): a forged ``PaymentSucceeded`` would mark a failed ride PAID, credit
the rider's points and make the ledger disagree with the ride. Sent straight to the consumers' queues it is
refused by the queues' policies; put on the payment bus by a service that is not payment, it is delivered
and dead-lettered ``untrusted_source`` by every consumer. Either way the ride, the ledger and the rider's
points stay as they were."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rider_client import Ops, Rider, book_ride

from acr import catalog
from acr.catalog.payment import PaymentPurpose, PaymentSucceeded
from acr.money import Money
from acr_stack import Stack
from acr_stack.principals import access_key_id

pytestmark = pytest.mark.system

CONSUMERS = ("acr-ride-manager-events", "acr-reward-events")  # the queues PaymentSucceeded is delivered to
FORGER = "car-simulator"  # a service of the stack that publishes no payment event


@pytest.fixture(scope="module")
def failed_ride(attack_stack: Stack) -> tuple[Rider, dict[str, Any]]:
    """A ride whose payment was declined: a ``PaymentSucceeded`` newer than the decline would make it PAID."""
    base = attack_stack.config.url("bff")
    ops = Ops(base)
    assert ops.call("PUT", "/gateway", {"mode": "decline"}).status_code == 200
    try:
        rider = Rider.sign_up(base, "Mallory")
        booked = book_ride(rider, random.Random(14))
        ride = rider.wait_status(booked["rideId"], "PAYMENT_FAILED", timeout_s=240)
    finally:
        ops.call("PUT", "/gateway", {"mode": "ok"})
    return rider, ride


def _client(stack: Stack, service: str, key: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.config.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="testing",
    )


def _forged(ride: dict[str, Any], rider: Rider, *, source: str) -> tuple[dict[str, Any], str]:
    """A well-formed ``PaymentSucceeded`` for the ride's fare, newer than any outcome payment told, as a
    CloudEvent claiming ``source``; and the EventBridge envelope a rule would deliver it in."""
    event = catalog.record(
        PaymentSucceeded(
            ride_id=ride["rideId"],
            rider_id=rider.rider_id,
            payment_id=f"pay_{uuid.uuid4().hex}",
            amount=Money.model_validate(ride["fare"]),
            purpose=PaymentPurpose.FARE,
        ),
        subject=ride["rideId"],
        sequence=99,
    ).model_copy(update={"source": source})
    detail = json.loads(event.to_json())
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event.type,
        "source": "acr.payment",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    return detail, json.dumps(envelope)


def _state(stack: Stack, rider: Rider, ride_id: str) -> tuple[Any, ...]:
    """What a forged payment would change: the ride (status, payment, version), the ledger, the points."""
    ride = rider.ride(ride_id)
    ledger = Ops(stack.config.url("bff")).get("/payments", rideId=ride_id)["charges"]
    return ride["status"], ride.get("payment"), ride.get("version"), ledger, rider.me().get("points")


def _untrusted(ops: Ops) -> dict[str, int]:
    return {q["queue"]: q["reasons"].get("untrusted_source", 0) for q in ops.get("/dlq")["queues"]}


def test_a_forged_payment_succeeded_sent_straight_to_the_queues_is_refused(
    attack_stack: Stack, failed_ride: tuple[Rider, dict[str, Any]]
) -> None:
    rider, ride = failed_ride
    before = _state(attack_stack, rider, ride["rideId"])
    _, body = _forged(ride, rider, source="acr.payment")
    for key in ("testing", access_key_id(FORGER)):  # anyone with the emulator's keys; another service
        sqs = _client(attack_stack, "sqs", key)
        for queue in (*CONSUMERS, "acr-payment-events"):
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            with pytest.raises(ClientError) as refused:
                sqs.send_message(QueueUrl=url, MessageBody=body)
            assert refused.value.response["Error"]["Code"] == "AccessDenied", queue
    time.sleep(3)  # what a consumer would have done with it by now
    assert _state(attack_stack, rider, ride["rideId"]) == before
    assert before[0] == "PAYMENT_FAILED"


def test_a_payment_succeeded_put_on_the_bus_by_another_service_is_dead_lettered_untrusted(
    attack_stack: Stack, failed_ride: tuple[Rider, dict[str, Any]]
) -> None:
    rider, ride = failed_ride
    ops = Ops(attack_stack.config.url("bff"))
    before, untrusted_before = _state(attack_stack, rider, ride["rideId"]), _untrusted(ops)
    events = _client(attack_stack, "events", access_key_id(FORGER))
    claims_payment, _ = _forged(ride, rider, source="acr.payment")  # the detail lies about its source
    own_name, _ = _forged(ride, rider, source=f"acr.{FORGER}")
    for detail in (claims_payment, own_name):
        put = events.put_events(
            Entries=[
                {
                    "EventBusName": "acr-payment",
                    "Source": f"acr.{FORGER}",
                    "DetailType": detail["type"],
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert put["FailedEntryCount"] == 0
    dlqs = [f"{queue}-dlq" for queue in CONSUMERS]
    ops.wait(
        lambda: all(_untrusted(ops).get(q, 0) - untrusted_before.get(q, 0) == 2 for q in dlqs),
        timeout_s=30,
        what=f"both forgeries dead-lettered untrusted_source in {dlqs}",
    )
    assert _state(attack_stack, rider, ride["rideId"]) == before

    # The operator's redrive sends them back to the queue (the queue lets the BFF send): refused again.
    redriven = ops.call("POST", "/dlq/acr-ride-manager-events-dlq/redrive")
    assert redriven.status_code == 200 and redriven.json()["redriven"] >= 2, redriven.text
    ops.wait(lambda: _untrusted(ops).get(dlqs[0], 0) >= 2, timeout_s=30, what="the redriven forgeries back")
    assert _state(attack_stack, rider, ride["rideId"]) == before
