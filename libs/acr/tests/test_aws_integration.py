"""The AWS adapters against a real emulator (moto server process, or LocalStack when Docker answers)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from acr_testkit.emulator import aws_emulator

from acr import aws, catalog
from acr.catalog.base import RIDE_UPDATES_TOPIC, EventData, Place
from acr.catalog.ride import RideRequested, RideUpdated
from acr.consumer import SqsConsumer, idempotent
from acr.envelope import CloudEvent
from acr.money import Money
from acr.runtime import Messaging
from acr.settings import Settings
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr.unit_of_work import Destination, Duplicate, Outgoing

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with aws_emulator() as url:
        s = Settings(aws_endpoint_url=url, sqs_wait_s=1)
        apply(discover(), Clients(lambda name: aws.client(name, s)))
        yield s


def _by_service(name: str) -> Any:
    return next(s for s in discover() if s.service == name)


def _ride_requested(ride_id: str) -> CloudEvent:
    place = Place(label="1 Main Street", lat=60.17, lon=24.94)
    data = RideRequested(
        ride_id=ride_id,
        rider_id="rdr_1",
        pickup=place,
        dropoff=place,
        quoted_fare=Money.of("9.90"),
        quoted_distance_meters=1000,
        quoted_duration_seconds=120,
        requested_at="2026-01-01T00:00:00Z",
    )
    return catalog.record(data, subject=ride_id, sequence=1)


def _drain(consumer: SqsConsumer, seen: list[Any], want: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while len(seen) < want and time.monotonic() < deadline:
        consumer.poll_once()


def test_applying_the_topology_twice_changes_nothing(settings: Settings) -> None:
    clients = Clients(lambda name: aws.client(name, settings))
    sqs = clients.sqs
    before = sorted(sqs.list_queues()["QueueUrls"])
    apply(discover(), clients)
    assert sorted(sqs.list_queues()["QueueUrls"]) == before
    rules = clients.events.list_rules(EventBusName="acr-ride")["Rules"]
    assert [r["Name"] for r in rules].count("car-dispatcher-events") == 1


def test_outbox_relay_bus_rule_queue_and_dedup_end_to_end(settings: Settings) -> None:
    producer = Messaging(_by_service("ride-manager"), settings)
    consumer_side = Messaging(_by_service("car-dispatcher"), settings)
    event = _ride_requested("ride_it_1")
    uow = producer.unit_of_work()
    uow.record(Outgoing(event, Destination("bus", "acr-ride")))
    uow.commit()
    assert producer.relay is not None and producer.relay.drain_once() == 1

    seen: list[CloudEvent] = []

    def handle(uow: Any, data: EventData, ev: CloudEvent) -> None:
        seen.append(ev)

    queue = consumer_side.queue_url("acr-car-dispatcher-events")
    loop = SqsConsumer(
        name="t",
        sqs=consumer_side.sqs,
        queue_url=queue,
        dead_letter_queue_url=consumer_side.queue_url("acr-car-dispatcher-events-dlq"),
        handler=idempotent(consumer_side.unit_of_work, {RideRequested: handle}),
        wait_s=1,
    )
    _drain(loop, seen, 1)
    assert [e.id for e in seen] == [event.id]

    # The same event delivered again (a producer resend) is a duplicate: the marker's condition fails.
    again = consumer_side.unit_of_work()
    again.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        again.commit()


def test_a_marker_past_the_dedup_window_counts_as_absent(settings: Settings) -> None:
    short = Messaging(_by_service("car-dispatcher"), settings.model_copy(update={"dedup_window_s": 1}))
    event = _ride_requested("ride_it_2")
    first = short.unit_of_work()
    first.mark_consumed(event)
    first.commit()
    time.sleep(2.1)
    later = short.unit_of_work()
    later.mark_consumed(event)
    later.commit()  # processed again, on purpose: the window is over


def test_ride_updates_reach_the_bff_fifo_queue_through_sns(settings: Settings) -> None:
    producer = Messaging(_by_service("ride-manager"), settings)
    bff = Messaging(_by_service("bff"), settings)
    events = []
    for version in (1, 2, 3):
        data = RideUpdated(
            ride_id="ride_it_3", rider_id="rdr_1", version=version, ride={"status": "REQUESTED"}
        )
        events.append(catalog.record(data, subject="ride_it_3", sequence=version))
    uow = producer.unit_of_work()
    for e in events:
        uow.record(Outgoing(e, Destination("topic", RIDE_UPDATES_TOPIC), group="ride_it_3"))
    uow.commit()
    assert producer.relay is not None and producer.relay.drain_once() == 3
    url = bff.queue_url("acr-bff-ride-updates.fifo")
    got: list[int] = []
    deadline = time.monotonic() + 15
    while len(got) < 3 and time.monotonic() < deadline:
        for m in bff.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            got.append(json.loads(m["Body"])["data"]["version"])
            bff.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert got == [1, 2, 3]


def test_a_non_retryable_failure_lands_in_the_producer_dlq(settings: Settings) -> None:
    producer = Messaging(_by_service("ride-manager"), settings)
    uow = producer.unit_of_work()
    uow.record(Outgoing(_ride_requested("ride_it_4"), Destination("bus", "acr-no-such-bus")))
    uow.commit()
    assert producer.relay is not None
    producer.relay.drain_once()
    dlq = producer.queue_url("acr-ride-manager-producer-dlq")
    messages = producer.sqs.receive_message(
        QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1
    ).get("Messages", [])
    assert len(messages) == 1
    assert messages[0]["MessageAttributes"]["reason"]["StringValue"]
    assert json.loads(messages[0]["Body"])["destination"] == "bus:acr-no-such-bus"


def test_sent_outbox_rows_are_purged_in_batches_after_the_retention(settings: Settings) -> None:
    producer = Messaging(
        _by_service("ride-manager"), settings.model_copy(update={"outbox_sent_retention_s": 0.5})
    )
    uow = producer.unit_of_work()
    events = [_ride_requested(f"ride_it_purge_{n}") for n in range(30)]
    for event in events:
        uow.record(Outgoing(event, Destination("bus", "acr-ride")))
    uow.commit()
    assert producer.relay is not None
    while producer.relay.drain_once():
        pass
    time.sleep(1.0)
    assert producer.relay.purge_sent() >= 30  # two BatchWriteItem requests at least (25 a request)
    table = _by_service("ride-manager").outbox_table
    left = [
        e.id
        for e in events
        if "Item" in producer.dynamodb.get_item(TableName=table, Key={"eventId": {"S": e.id}})
    ]
    assert left == []
