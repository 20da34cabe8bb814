"""Per-replica deliveries against the emulator: created at start, fed by the topic and the bus, removed at
stop, and a dead replica's swept once its heartbeat is stale."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from acr import aws
from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.channels import EventBridgeChannel, SnsFifoChannel
from acr.runtime import topic_arns
from acr.settings import Settings
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr.topology.plan import plan
from acr.topology.replicas import ReplicaQueues, replica_suffix
from acr.unit_of_work import outgoing
from acr_testkit.emulator import aws_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clients() -> Iterator[Clients]:
    with aws_emulator() as url:
        settings = Settings(aws_endpoint_url=url)
        made = Clients(lambda name: aws.client(name, settings))
        apply(discover(), made)
        yield made


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _replica(clients: Clients, name: str, clock: Clock) -> ReplicaQueues:
    bff = next(p for p in plan(discover()) if p.service == "bff")
    return ReplicaQueues(
        bff,
        name,
        sqs=clients.sqs,
        sns=clients.sns,
        events=clients.events,
        find_topics=lambda: topic_arns(clients.sns),
        stale_s=600,
        clock=clock,
    )


def _queues(clients: Clients) -> set[str]:
    return {
        u.rsplit("/", 1)[-1] for u in clients.sqs.list_queues(QueueNamePrefix="acr-bff-").get("QueueUrls", [])
    }


def _rules(clients: Clients) -> set[str]:
    return {r["Name"] for r in clients.events.list_rules(EventBusName="acr-monitoring")["Rules"]}


def _received(clients: Clients, queue: str) -> list[str]:
    url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    deadline, got = time.monotonic() + 10, []
    while not got and time.monotonic() < deadline:
        got = clients.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    bodies = [json.loads(m["Body"]) for m in got]  # a CloudEvent (raw SNS), or EventBridge's envelope
    return [str(b.get("detail-type") or b["type"]).rsplit(".", 1)[-1] for b in bodies]


def test_names_are_safe_and_distinct() -> None:
    assert replica_suffix("BFF_1.local:8000") == "bff-1-local-8000"
    long_a, long_b = replica_suffix("x" * 60 + "a"), replica_suffix("x" * 60 + "b")
    assert len(long_a) <= 40 and long_a != long_b


def test_each_replica_gets_every_message_and_removes_its_queues_at_stop(clients: Clients) -> None:
    clock = Clock()
    one, two = _replica(clients, "bff-1", clock), _replica(clients, "bff-2", clock)
    one.open()
    two.open()
    assert {"acr-bff-ride-updates-bff-1.fifo", "acr-bff-ride-eta-dlq-bff-2"} <= _queues(clients)
    assert {"bff-ride-eta-bff-1", "bff-ride-eta-bff-2"} <= _rules(clients)
    eta_url = clients.sqs.get_queue_url(QueueName="acr-bff-ride-eta-bff-1")["QueueUrl"]
    kept = clients.sqs.get_queue_attributes(QueueUrl=eta_url, AttributeNames=["MessageRetentionPeriod"])
    assert kept["Attributes"]["MessageRetentionPeriod"] == "60"  # an ETA is worth seconds
    updated = RideUpdated(ride_id="ride_r1", rider_id="rdr_1", version=1, ride={})
    SnsFifoChannel(clients.sns, topic_arns(clients.sns)).send([outgoing(updated, subject="ride_r1")])
    eta = RideEtaUpdated(ride_id="ride_r1", car_id="c", phase="TO_PICKUP", eta_seconds=1.0, lat=0.0, lon=0.0)
    EventBridgeChannel(clients.events).send([outgoing(eta, subject="ride_r1")])
    for replica in ("bff-1", "bff-2"):
        assert _received(clients, f"acr-bff-ride-updates-{replica}.fifo") == ["RideUpdated"]
        assert _received(clients, f"acr-bff-ride-eta-{replica}") == ["RideEtaUpdated"]
    one.close()
    two.close()
    assert not any("bff-1" in q or "bff-2" in q for q in _queues(clients))
    assert not {"bff-ride-eta-bff-1", "bff-ride-eta-bff-2"} & _rules(clients)
    topic = topic_arns(clients.sns)["acr-ride-updates.fifo"]
    endpoints = [
        s["Endpoint"] for s in clients.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    ]
    assert not any("bff-1" in e or "bff-2" in e for e in endpoints)


def test_only_its_rule_or_topic_and_the_bff_itself_may_send_to_a_replicas_queues(clients: Clients) -> None:
    replica = _replica(clients, "bff-policy", Clock())
    replica.open()
    try:

        def policy(queue: str) -> dict[str, Any]:
            url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])[
                "Attributes"
            ]
            return dict(json.loads(attributes["Policy"]))

        eta, updates = policy("acr-bff-ride-eta-bff-policy"), policy("acr-bff-ride-updates-bff-policy.fifo")
        (deny,) = [s for s in eta["Statement"] if s["Effect"] == "Deny"]
        assert [a.rsplit("/", 1)[-1] for a in deny["Condition"]["ArnNotEquals"]["aws:SourceArn"]] == [
            "bff-ride-eta-bff-policy"
        ]
        assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
            "arn:aws:iam::123456789012:role/acr-bff"
        ]
        (deny,) = [s for s in updates["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"]["ArnNotEquals"]["aws:SourceArn"] == [
            topic_arns(clients.sns)["acr-ride-updates.fifo"]
        ]
        (deny,) = [s for s in policy("acr-bff-ride-eta-dlq-bff-policy")["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {
            "ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/acr-bff"]}
        }
    finally:
        replica.close()


def test_a_killed_replicas_deliveries_are_swept_once_its_heartbeat_is_stale(clients: Clients) -> None:
    clock = Clock()
    killed, live = _replica(clients, "bff-killed", clock), _replica(clients, "bff-live", clock)
    killed.open()  # and never closed
    live.open()
    clock.now += 300
    live.heartbeat()
    assert live.sweep() == []  # not stale yet
    clock.now += 400  # killed: last seen 700 s ago; live: 400 s ago
    assert live.sweep() == ["bff-killed"]
    assert live.sweep() == []  # idempotent
    assert not any("bff-killed" in q for q in _queues(clients))
    assert "bff-ride-eta-bff-killed" not in _rules(clients)
    assert {"acr-bff-ride-updates-bff-live.fifo", "acr-bff-ride-eta-bff-live"} <= _queues(clients)
    live.close()


def test_a_replica_cut_off_long_enough_to_be_swept_creates_its_deliveries_again(clients: Clients) -> None:
    clock = Clock()
    cut_off, other = _replica(clients, "bff-cut", clock), _replica(clients, "bff-other", clock)
    cut_off.open()
    other.open()
    clock.now += 700
    other.heartbeat()
    assert other.sweep() == ["bff-cut"]
    cut_off.heartbeat()  # its stamps fail: the queues are gone
    assert {"acr-bff-ride-updates-bff-cut.fifo", "acr-bff-ride-eta-bff-cut"} <= _queues(clients)
    assert "bff-ride-eta-bff-cut" in _rules(clients)
    assert other.sweep() == []  # stamped anew at creation
    cut_off.close()
    other.close()
