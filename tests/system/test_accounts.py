"""One emulator account per bounded context (``ACR_ACCOUNTS=multi``): the exported CloudFormation stacks
are deployed through the emulator's CloudFormation, each in its context's account (``acr_stack.accounts``),
and rides go through the BFF while every event crosses accounts bus to bus, as on AWS."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rider_client import Ops, Rider, book_ride
from stack_fixtures import running_stack

from acr.topology.allow_lists import ALLOW_LISTS
from acr_stack import Stack
from acr_stack.account_stacks import NOT_CREATED
from acr_stack.accounts import client_in, layout, plans

pytestmark = pytest.mark.system

RIDES = 10
RIDE_EVENTS = '{"source": ["acr.ride-manager"]}'
CREATED_BY_FILL_IN = (
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::Kinesis::ResourcePolicy",
    "AWS::Events::Archive",  # moto's CloudFormation fails on it: left out of the stack, made by fill_in
)
"""Made by ``acr_stack.accounts.fill_in`` with the calls CloudFormation would make."""
NO_EFFECT_ON_THE_EMULATOR = (  # left out: nothing on the emulator reads them
    "AWS::CloudWatch::Alarm",
    "AWS::EventSchemas::Registry",
    "AWS::EventSchemas::Schema",
    "AWS::Pipes::Pipe",  # only with OutboxRelay=pipes; the emulator has no Pipes
)


@pytest.fixture(scope="module")
def multi_account_stack() -> Iterator[Stack]:
    yield from running_stack("accounts", ACR_ACCOUNTS="multi")


@pytest.fixture(scope="module")
def accounts() -> dict[str, str]:
    return layout(plans())


def test_the_types_the_emulators_cloudformation_does_not_create_are_the_ones_listed() -> None:
    assert set(NOT_CREATED) == set(CREATED_BY_FILL_IN) | set(NO_EFFECT_ON_THE_EMULATOR)


def test_each_context_is_one_stack_in_an_account_of_its_own(
    multi_account_stack: Stack, accounts: dict[str, str]
) -> None:
    endpoint = multi_account_stack.config.endpoint
    assert len(set(accounts.values())) == len(accounts) == 8
    for context, account in accounts.items():
        cloudformation = client_in(endpoint, account, "cloudformation")
        stacks = cloudformation.describe_stacks()["Stacks"]
        assert [(s["StackName"], s["StackStatus"]) for s in stacks] == [(f"acr-{context}", "CREATE_COMPLETE")]
    ride_events = client_in(endpoint, accounts["ride"], "events")
    payment_events = client_in(endpoint, accounts["payment"], "events")
    assert "acr-ride" in [b["Name"] for b in ride_events.list_event_buses()["EventBuses"]]
    assert "acr-ride" not in [b["Name"] for b in payment_events.list_event_buses()["EventBuses"]]
    assert [a["ArchiveName"] for a in ride_events.list_archives()["Archives"]] == ["acr-ride-archive"]
    payment_queues = client_in(endpoint, accounts["payment"], "sqs").list_queues()["QueueUrls"]
    assert f"{accounts['payment']}/acr-payment-events" in " ".join(payment_queues)
    assert (
        not client_in(endpoint, accounts["ride"], "sqs")
        .list_queues(QueueNamePrefix="acr-payment")
        .get("QueueUrls")
    )
    # the policies moto's CloudFormation skips were made by fill_in: the payment queue takes only its feeds
    policy = json.loads(
        client_in(endpoint, accounts["payment"], "sqs").get_queue_attributes(
            QueueUrl=next(u for u in payment_queues if u.endswith("/acr-payment-events")),
            AttributeNames=["Policy"],
        )["Attributes"]["Policy"]
    )
    assert any(s["Effect"] == "Deny" for s in policy["Statement"]), policy


def _ride_to_paid(rider: Rider, rng: random.Random) -> dict[str, Any]:
    ride = book_ride(rider, rng)
    return rider.wait_for(  # type: ignore[no-any-return]
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=240,
        what="PAID with points",
    )


def test_ten_rides_reach_paid_with_every_event_crossing_accounts_bus_to_bus(
    multi_account_stack: Stack, accounts: dict[str, str]
) -> None:
    bff = multi_account_stack.config.url("bff")
    ops = Ops.of(multi_account_stack)
    riders = [Rider.sign_up(bff, f"Account rider {n}") for n in range(RIDES)]
    with ThreadPoolExecutor(RIDES) as pool:
        rides = list(pool.map(_ride_to_paid, riders, [random.Random(n) for n in range(RIDES)]))

    for rider, ride in zip(riders, rides, strict=True):
        expected = (1, math.floor(Decimal(ride["fare"]["amount"])))
        rider.me_when(lambda m, e=expected: (m["rideCount"], m["points"]) == e, what=f"{expected}")
        assert len(ops.captures(ride["rideId"])) == 1

    # RideCompleted left the ride account's outbox with its CloudEvent id; the payment account's consumer
    # deduplicated it on that id, although EventBridge gave the event a new id on each bus it crossed
    endpoint = multi_account_stack.config.endpoint
    ride_id = rides[0]["rideId"]
    outbox = client_in(endpoint, accounts["ride"], "dynamodb").scan(TableName="acr-ride-manager-outbox")[
        "Items"
    ]
    events = [json.loads(row["event"]["S"]) for row in outbox if row.get("subject", {}).get("S") == ride_id]
    completed = [e for e in events if e["type"].endswith(".RideCompleted")]
    assert len(completed) == 1, completed
    markers = client_in(endpoint, accounts["payment"], "dynamodb").scan(TableName="acr-payment-inbox")[
        "Items"
    ]
    assert f"{completed[0]['source']}#{completed[0]['id']}" in {m["dedupKey"]["S"] for m in markers}


def test_an_account_off_the_producers_allow_list_cannot_put_a_rule_on_its_bus(
    multi_account_stack: Stack, accounts: dict[str, str]
) -> None:
    """reward is not on ride's allow-list: the emulator refuses its rule on the ride bus (moto refuses every
    rule on another account's bus; AWS refuses by the bus policy), and the bus policy deployed on the ride
    account lets only the allow-listed accounts manage rules on it."""
    endpoint = multi_account_stack.config.endpoint
    ride_bus = f"arn:aws:events:us-east-1:{accounts['ride']}:event-bus/acr-ride"
    stranger = client_in(endpoint, accounts["reward"], "events")
    with pytest.raises(ClientError):
        stranger.put_rule(
            Name="reward-listens-in", EventBusName=ride_bus, EventPattern='{"source": ["acr.ride-manager"]}'
        )
    policy = json.loads(
        client_in(endpoint, accounts["ride"], "events").describe_event_bus(Name="acr-ride")["Policy"]
    )
    managing = [s for s in policy["Statement"] if "events:PutRule" in s["Action"]]
    assert len(managing) == 1, managing
    principals = managing[0]["Principal"]["AWS"]
    allowed = {f"arn:aws:iam::{accounts[c]}:root" for c in ALLOW_LISTS["ride"]}
    assert set(principals if isinstance(principals, list) else [principals]) == allowed
    assert f"arn:aws:iam::{accounts['reward']}:root" not in principals


def test_the_ops_dlq_lists_and_redrives_every_accounts_dead_letter_queues(
    multi_account_stack: Stack, accounts: dict[str, str]
) -> None:
    """Each service reads its own DLQs in its own account, so the BFF (in the bff account) lists the payment
    account's too, and a redrive reaches them."""
    ops = Ops.of(multi_account_stack)
    listed = ops.get("/dlq")
    queues = {q["queue"] for q in listed["queues"]}
    assert {"acr-payment-events-dlq", "acr-payment-producer-dlq", "acr-ride-manager-events-dlq"} <= queues
    assert listed["unavailable"] == []
    endpoint = multi_account_stack.config.endpoint
    assert (
        not client_in(endpoint, accounts["bff"], "sqs")
        .list_queues(QueueNamePrefix="acr-payment")
        .get("QueueUrls")
    )  # the BFF's own account has none of them
    redriven = ops.call("POST", "/dlq/acr-payment-events-dlq/redrive")
    assert redriven.status_code == 200 and redriven.json()["queue"] == "acr-payment-events-dlq", redriven.text
