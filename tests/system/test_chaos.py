"""Exactly-once effects under at-least-once delivery, with every fault injected at once (fixed seed):
lost acknowledgements, partial failures and throttling on publish, duplicated and reordered delivery,
consumer crashes before the ack and after the commit, gateway timeouts after a capture."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import boto3
import pytest
from rider_client import LOG_DIR, Listener, Ops, Rider, book_ride

from acr_stack import Stack
from acr_stack.principals import access_key_id

pytestmark = pytest.mark.system
RIDERS, RIDES_EACH = 25, 2


def _rides_of(rider: Rider, seed: int) -> tuple[Rider, list[dict[str, Any]], Listener]:
    listener = Listener(rider)
    rng, done = random.Random(seed), []
    for _ in range(RIDES_EACH):
        ride = book_ride(rider, rng)
        final = rider.wait_for(
            ride["rideId"],
            lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
            timeout_s=420,
            what="PAID with points",
        )
        # Every fault can hit a version's push a few times; a FIFO group waits out each crash's backoff
        # (up to 30 s) before the next version, so the last push may come a few minutes after PAID.
        listener.wait_version(ride["rideId"], final["version"], timeout_s=240)
        done.append(final)
    return rider, done, listener


def _poison(stack: Stack) -> None:
    """The test's own poison messages: they must end in a DLQ with their reason, and nothing else may.
    Sent as car-dispatcher itself: its queue's policy refuses a send from anyone else."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.config.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key_id("car-dispatcher"),
        aws_secret_access_key="testing",
    )
    url = sqs.get_queue_url(QueueName="acr-car-dispatcher-events")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{this is not json")
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(
            {
                "detail-type": "x",
                "detail": {
                    "specversion": "1.0",
                    "id": "poison-1",
                    "source": "acr.test",
                    "type": "acme.acr.ride.Unheard",
                    "time": "2026-01-01T00:00:00Z",
                    "data": {},
                },
            }
        ),
    )


def test_fifty_rides_through_every_fault_have_exactly_once_effects(chaos_stack: Stack) -> None:
    base = chaos_stack.config.url("bff")
    ops = Ops.of(chaos_stack)
    riders = [Rider.sign_up(base, f"Chaos {n}") for n in range(RIDERS)]
    _poison(chaos_stack)
    started = time.monotonic()
    with ThreadPoolExecutor(RIDERS) as pool:
        futures = [pool.submit(_rides_of, rider, n) for n, rider in enumerate(riders)]
        results = [f.result() for f in futures]  # nothing is redriven: a relay never gives up on a retryable

    for rider, rides, listener in results:
        listener.close()
        for ride in rides:
            assert listener.versions(ride["rideId"]) == list(range(1, ride["version"] + 1)), ride["rideId"]
            assert len(ops.captures(ride["rideId"])) == 1
        expected = (RIDES_EACH, sum(math.floor(Decimal(r["fare"]["amount"])) for r in rides))
        rider.me_when(lambda m, e=expected: (m["rideCount"], m["points"]) == e, what=f"{expected}")

    stats = ops.get("/stats")
    totals = stats["totals"]
    assert totals["duplicatesDiscarded"] > 0, totals
    assert sum(totals["resent"].values()) > 0, totals
    dead = {q["queue"]: q for q in ops.get("/dlq")["queues"] if q["depth"]}
    assert set(dead) == {"acr-car-dispatcher-events-dlq"}, dead
    assert dead["acr-car-dispatcher-events-dlq"]["depth"] == 2
    assert set(dead["acr-car-dispatcher-events-dlq"]["reasons"]) == {"unparseable", "unknown_type"}

    injected = Counter[str]()
    for service in stats["services"].values():
        injected.update(service.get("faultsInjected", {}))
    assert injected["uow.crash_before_commit"] > 0 and injected["uow.conflict"] > 0, injected

    report = {
        "rides": RIDERS * RIDES_EACH,
        "seconds": round(time.monotonic() - started, 1),
        "totals": totals,
        "faultsInjected": {name: s.get("faultsInjected", {}) for name, s in stats["services"].items()},
    }
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "chaos-report.json").write_text(json.dumps(report, indent=2))
    print("chaos:", json.dumps(report))  # noqa: T201
