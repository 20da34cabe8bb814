"""The AWS adapters against a real emulator (moto server process, or LocalStack when Docker answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from acr import aws, catalog
from acr.catalog.base import Destination, EventData, Place
from acr.catalog.ride import RideRequested, RideUpdated
from acr.consumer import Handlers, SqsConsumer, Wait, idempotent
from acr.dynamo import DynamoUnitOfWork
from acr.envelope import CloudEvent
from acr.loops import Loops
from acr.money import Money
from acr.runtime import Messaging
from acr.settings import Settings
from acr.sweeper import Sweeper, expiring_tables
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr.unit_of_work import Duplicate, Outgoing, outbox_row
from acr_stack.principals import access_key_id
from acr_testkit.emulator import aws_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with aws_emulator() as url:
        s = Settings(aws_endpoint_url=url, sqs_wait_s=1)
        apply(discover(), Clients(lambda name: aws.client(name, s)))
        yield s


def _by_service(name: str) -> Any:
    return next(s for s in discover() if s.service == name)


def _messaging(service: str, settings: Settings, loops: Loops | None = None) -> Messaging:
    return Messaging(_by_service(service), settings, loops or Loops())


def _signed_as(service: str, settings: Settings) -> Callable[[str], Any]:
    """Clients signing with ``service``'s key of the embedded stack, which the queues' policies know."""
    return lambda name: boto3.client(
        name,
        endpoint_url=settings.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access_key_id(service),
        aws_secret_access_key="testing",
    )


def _ride_requested(ride_id: str) -> RideRequested:
    place = Place(label="1 Main Street", lat=60.17, lon=24.94)
    return RideRequested(
        ride_id=ride_id,
        rider_id="rdr_1",
        pickup=place,
        dropoff=place,
        quoted_fare=Money.of("9.90"),
        quoted_distance_meters=1000,
        quoted_duration_seconds=120,
        requested_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _record(uow: DynamoUnitOfWork, data: RideRequested) -> CloudEvent:
    """Record ``data`` as ride-manager does; the event it became."""
    uow.record(data, subject=data.ride_id, sequence=1)
    return uow.recorded[-1].event


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
    producer = _messaging("ride-manager", settings)
    consumer_side = _messaging("car-dispatcher", settings)
    uow = producer.unit_of_work()
    event = _record(uow, _ride_requested("ride_it_1"))
    assert str(uow.recorded[-1].destination) == "bus:acr-ride"
    uow.commit()
    assert producer.relay is not None and producer.relay.drain_once() == 1

    seen: list[CloudEvent] = []

    def handle(uow: DynamoUnitOfWork, data: EventData, ev: CloudEvent) -> None:
        seen.append(ev)

    queue = consumer_side.queue_url("acr-car-dispatcher-events")
    loop = SqsConsumer(
        name="t",
        sqs=consumer_side.sqs,
        queue_url=queue,
        dead_letter_queue_url=consumer_side.queue_url("acr-car-dispatcher-events-dlq"),
        handler=idempotent(
            consumer_side.unit_of_work, Handlers[DynamoUnitOfWork]().on(RideRequested, handle)
        ),
        wait_s=1,
    )
    _drain(loop, seen, 1)
    assert [e.id for e in seen] == [event.id]

    # The same event delivered again (a producer resend) is a duplicate: the marker's condition fails.
    again = consumer_side.unit_of_work()
    again.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        again.commit()


def test_an_event_put_on_a_bus_by_a_service_that_is_not_its_producer_is_dead_lettered_untrusted(
    settings: Settings,
) -> None:
    """payment may put events on the ride bus here (the emulator has no bus policy): the rule delivers a
    ``RideRequested`` claiming ``acr.payment`` to car-dispatcher, whose consumer dead-letters it unhandled."""
    dispatcher = Messaging(
        _by_service("car-dispatcher"), settings, Loops(), make_client=_signed_as("car-dispatcher", settings)
    )
    forged = catalog.record(_ride_requested("ride_it_forged"), subject="ride_it_forged", sequence=1)
    forged = forged.model_copy(update={"source": "acr.payment"})
    put = _signed_as("payment", settings)("events").put_events(
        Entries=[
            {
                "EventBusName": "acr-ride",
                "Source": "acr.payment",
                "DetailType": forged.type,
                "Detail": forged.to_json(),
            }
        ]
    )
    assert put["FailedEntryCount"] == 0
    handled: list[str] = []
    dlq = dispatcher.queue_url("acr-car-dispatcher-events-dlq")
    loop = SqsConsumer(
        name="t",
        sqs=dispatcher.sqs,
        queue_url=dispatcher.queue_url("acr-car-dispatcher-events"),
        dead_letter_queue_url=dlq,
        handler=lambda event, data: handled.append(event.id),
        wait_s=1,
    )
    reasons: list[str] = []
    deadline = time.monotonic() + 15
    while not reasons and time.monotonic() < deadline:
        loop.poll_once()
        page = dispatcher.sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        reasons = [
            m["MessageAttributes"]["reason"]["StringValue"]
            for m in page.get("Messages", [])
            if forged.id in m["Body"]
        ]
    assert reasons == ["untrusted_source"]
    assert forged.id not in handled


def test_a_marker_past_the_dedup_window_counts_as_absent(settings: Settings) -> None:
    short = _messaging("car-dispatcher", settings.model_copy(update={"dedup_window_s": 1}))
    event = catalog.record(_ride_requested("ride_it_2"), subject="ride_it_2", sequence=1)
    first = short.unit_of_work()
    first.mark_consumed(event)
    first.commit()
    time.sleep(2.1)
    later = short.unit_of_work()
    later.mark_consumed(event)
    later.commit()  # processed again, on purpose: the window is over


def test_ride_updates_reach_the_bff_fifo_queue_through_sns(settings: Settings) -> None:
    producer = _messaging("ride-manager", settings)
    bff = _messaging("bff", settings)
    uow = producer.unit_of_work()
    for version in (1, 2, 3):
        data = RideUpdated(
            ride_id="ride_it_3", rider_id="rdr_1", version=version, ride={"status": "REQUESTED"}
        )
        uow.record(data, subject="ride_it_3", sequence=version)
    assert {(str(o.destination), o.group) for o in uow.recorded} == {
        ("topic:acr-ride-updates.fifo", "ride_it_3"),
        ("bus:acr-ride", None),  # each snapshot's copy for the acr-ride archive
    }
    uow.commit()
    assert producer.relay is not None
    published = [producer.relay.drain_once() for _ in range(4)]
    # a FIFO group's rows go out one at a time, oldest first; the three bus copies go in the first round
    assert published == [4, 1, 1, 0]
    assert bff.replica_queues is not None  # the BFF's push queues are its replica's own
    url = bff.queue_url(bff.replica_queues.names("acr-bff-ride-updates.fifo")[0])
    got: list[int] = []
    deadline = time.monotonic() + 15
    while len(got) < 3 and time.monotonic() < deadline:
        for m in bff.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            got.append(json.loads(m["Body"])["data"]["version"])
            bff.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    bff.close()
    assert got == [1, 2, 3]


def test_a_non_retryable_failure_lands_in_the_producer_dlq(settings: Settings) -> None:
    """An outbox row addressed to a bus that does not exist (as if the topology were not applied)."""
    producer = _messaging("ride-manager", settings)
    uow = producer.unit_of_work()
    event = catalog.record(_ride_requested("ride_it_4"), subject="ride_it_4", sequence=1)
    row = outbox_row(Outgoing(event, Destination("bus", "acr-no-such-bus")), time.time())
    uow.tx.put(producer.topology.outbox_table, row, label="outbox")
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


def test_sent_outbox_rows_are_swept_after_the_retention(settings: Settings) -> None:
    producer = _messaging("ride-manager", settings.model_copy(update={"outbox_sent_retention_s": 0.5}))
    uow = producer.unit_of_work()
    events = [_record(uow, _ride_requested(f"ride_it_purge_{n}")) for n in range(30)]
    uow.commit()
    assert producer.relay is not None
    while producer.relay.drain_once():
        pass
    time.sleep(1.0)
    table = _by_service("ride-manager").outbox_table
    sweeper = Sweeper(producer.dynamodb, [e for e in expiring_tables(producer.topology) if e.table == table])
    assert sum(sweeper.sweep_once() for _ in range(5)) >= 30  # runs of bounded pages, however full the table
    left = [
        e.id
        for e in events
        if "Item" in producer.dynamodb.get_item(TableName=table, Key={"eventId": {"S": e.id}})
    ]
    assert left == []


def test_the_relay_and_a_consumer_run_as_loops_and_stop_when_the_loops_stop(settings: Settings) -> None:
    """``Messaging`` registers its relay and each consumer on the service's loops; starting the loops
    publishes and consumes without any call by hand, and stopping them joins every thread."""
    producer_loops, consumer_loops = Loops(), Loops()
    producer = _messaging("ride-manager", settings, producer_loops)
    consumer_side = _messaging("car-dispatcher", settings, consumer_loops)
    seen: list[str] = []
    arrived = threading.Event()

    def handle(uow: DynamoUnitOfWork, data: RideRequested, event: CloudEvent) -> None:
        if data.ride_id == "ride_it_loops":
            seen.append(event.id)
            uow.after_commit(arrived.set)

    consumer_side.consume(
        "events", Handlers[DynamoUnitOfWork]().on(RideRequested, handle), consumer_side.unit_of_work
    )
    assert producer_loops.names == ["relay", "sweeper"]  # on the emulator, where TTL never deletes
    assert "acr-car-dispatcher-events" in consumer_loops.names
    producer_loops.start()
    consumer_loops.start()
    try:
        uow = producer.unit_of_work()
        event = _record(uow, _ride_requested("ride_it_loops"))
        uow.commit()  # wakes the relay
        assert arrived.wait(20), "the event did not arrive through the relay and the consumer loops"
        assert seen == [event.id]
    finally:
        started = time.monotonic()
        producer_loops.stop(timeout_s=5)
        consumer_loops.stop(timeout_s=5)
    assert time.monotonic() - started < 8  # a long poll (1 s here) is the longest a loop takes to stop


def test_a_fifo_message_that_waits_is_held_in_order_on_the_emulator(settings: Settings) -> None:
    """A ``Wait`` on a FIFO queue: held in memory, its group behind it, and handled in order once ready,
    with nothing re-received on the way (each message handled once, from its first receive)."""
    history = _messaging("ride-manager", settings)
    queue = history.queue_url("acr-ride-manager-history.fifo")
    dlq = history.queue_url("acr-ride-manager-history-dlq.fifo")
    events = [
        catalog.record(
            RideUpdated(ride_id="ride_it_wait", rider_id="rdr_1", version=v, ride={"v": v}),
            subject="ride_it_wait",
            sequence=v,
        )
        for v in (1, 2)
    ]
    as_ride_manager = _signed_as("ride-manager", settings)("sqs")  # the queue's policy lets its consumer send
    for event in events:
        as_ride_manager.send_message(
            QueueUrl=queue,
            MessageBody=event.to_json(),
            MessageGroupId="ride_it_wait",
            MessageDeduplicationId=event.id,
        )
    ready, tries, handled = threading.Event(), [], []

    def handler(event: CloudEvent, data: EventData) -> None:
        if event.subject != "ride_it_wait":
            return  # what other tests left on the queue
        tries.append(event.sequence)
        if not ready.is_set():
            raise Wait("not yet")
        handled.append(event.sequence)

    loop = SqsConsumer(
        name="t", sqs=history.sqs, queue_url=queue, dead_letter_queue_url=dlq, handler=handler, wait_s=1
    )
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        loop.poll_once()
    assert handled == [] and set(tries) == {1}  # version 2 never handled before version 1
    ready.set()
    deadline = time.monotonic() + 15
    while len(handled) < 2 and time.monotonic() < deadline:
        loop.poll_once()
    assert handled == [1, 2] and tries.count(1) >= 2
    left = history.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]["ApproximateNumberOfMessages"]
    assert left == "0"
