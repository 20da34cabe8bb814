"""The SQS consumer's outcomes: park (update before create), stale, duplicate, and the orphan DLQ."""

from __future__ import annotations

import json

import pytest
from acr_exactly_once_fakes import INBOX, STATE, Clock, Sqs, in_process_dynamodb

from acr import catalog, dynamo
from acr.catalog.base import EventData
from acr.catalog.fleet import NoCarAvailable
from acr.consumer import MAX_PARKS, Handlers, Park, SqsConsumer, Stale, idempotent
from acr.dynamo import DynamoUnitOfWork
from acr.envelope import CloudEvent
from acr.metrics import Counters
from acr.unit_of_work import Duplicate

QUEUE, DLQ = "https://sqs/acr-svc-events", "https://sqs/acr-svc-events-dlq"
FIFO, FIFO_DLQ = "https://sqs/acr-svc-history.fifo", "https://sqs/acr-svc-history-dlq.fifo"


def _event() -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id="ride_1", reason="x"), subject="ride_1")


def _consumer(sqs: Sqs, handler, counters: Counters, queue: str = QUEUE) -> SqsConsumer:  # type: ignore[no-untyped-def]
    return SqsConsumer(
        name="svc",
        sqs=sqs,
        queue_url=queue,
        dead_letter_queue_url=FIFO_DLQ if queue == FIFO else DLQ,
        handler=handler,
        wait_s=0,
        counters=counters,
    )


def _raise(exc: Exception):  # type: ignore[no-untyped-def]
    def handler(event: CloudEvent, data: EventData) -> None:
        raise exc

    return handler


def test_an_update_before_its_create_is_parked_resent_with_a_delay_and_never_dropped() -> None:
    sqs, counters, calls = Sqs(), Counters(), []
    event = _event()
    sqs.put(QUEUE, event.to_json())
    original = sqs.queues[QUEUE][0]["ReceiptHandle"]

    def handler(e: CloudEvent, data: EventData) -> None:
        calls.append(e.id)
        raise Park("ride_1 does not exist yet")

    consumer = _consumer(sqs, handler, counters)
    consumer.poll_once()
    (parked,) = sqs.queues[QUEUE]
    assert original in sqs.deleted and parked["ReceiptHandle"] != original
    assert parked["Body"] == event.to_json()  # the same event: same id, same eventcount
    assert (parked["DelaySeconds"], sqs.attribute(parked, "parked")) == (2, "1")
    assert counters.get("parked") == 1

    consumer.poll_once()  # still not there: parked again, a little longer
    (parked,) = sqs.queues[QUEUE]
    assert (parked["DelaySeconds"], sqs.attribute(parked, "parked")) == (4, "2")
    assert counters.get("parked") == 2 and counters.get("deadLettered") == 0
    assert calls == [event.id, event.id]


def test_the_park_delay_is_capped() -> None:
    sqs, counters = Sqs(), Counters()
    sqs.send_message(
        QUEUE,
        _event().to_json(),
        MessageAttributes={"parked": {"DataType": "Number", "StringValue": str(MAX_PARKS - 1)}},
    )
    _consumer(sqs, _raise(Park("later")), counters).poll_once()
    (parked,) = sqs.queues[QUEUE]
    assert parked["DelaySeconds"] == 30 and sqs.attribute(parked, "parked") == str(MAX_PARKS)


def test_after_max_parks_the_orphan_update_goes_to_the_dlq_with_its_reason() -> None:
    sqs, counters = Sqs(), Counters()
    body = _event().to_json()
    sqs.send_message(
        QUEUE, body, MessageAttributes={"parked": {"DataType": "Number", "StringValue": str(MAX_PARKS)}}
    )
    _consumer(sqs, _raise(Park("ride_1 does not exist yet")), counters).poll_once()
    assert sqs.queues[QUEUE] == []
    (dead,) = sqs.queues[DLQ]
    assert dead["Body"] == body
    assert sqs.attribute(dead, "reason") == "orphan_update"
    assert "ride_1 does not exist yet" in (sqs.attribute(dead, "detail") or "")
    assert sqs.attribute(dead, "sourceQueue") == "acr-svc-events"
    assert counters.get("deadLettered") == 1 and counters.get("parked") == 0


def test_a_stale_update_is_acknowledged_and_counted() -> None:
    sqs, counters = Sqs(), Counters()
    sqs.put(QUEUE, _event().to_json())
    _consumer(sqs, _raise(Stale("v2 <= v3")), counters).poll_once()
    assert sqs.queues[QUEUE] == [] and sqs.queues.get(DLQ) is None
    assert (counters.get("staleDropped"), counters.get("consumed")) == (1, 0)


def test_a_failure_backs_off_longer_with_each_receive() -> None:
    sqs, counters = Sqs(), Counters()
    sqs.put(QUEUE, _event().to_json())
    sqs.queues[QUEUE][0]["Attributes"]["ApproximateReceiveCount"] = "4"
    _consumer(sqs, _raise(RuntimeError("down")), counters).poll_once()
    assert len(sqs.queues[QUEUE]) == 1 and sqs.visibility == {"rh-m1": 16}


def test_a_redelivered_event_is_applied_once_through_the_idempotent_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real chain: SqsConsumer -> idempotent -> DynamoUnitOfWork -> TransactWriteItems (on moto)."""
    monkeypatch.setattr(dynamo, "time", Clock())
    sqs, counters = Sqs(), Counters()

    def cancel(uow: DynamoUnitOfWork, data: NoCarAvailable, event: CloudEvent) -> None:
        uow.tx.put(STATE, {"id": data.ride_id, "status": "CANCELLED"}, label="state")

    event = _event()
    eventbridge = json.dumps(
        {"detail-type": event.type, "source": event.source, "detail": json.loads(event.to_json())}
    )
    sqs.put(QUEUE, eventbridge)  # via EventBridge
    sqs.put(QUEUE, event.resent().to_json())  # and a resend by the producer (raw)
    with in_process_dynamodb() as dynamodb:
        handlers = Handlers[DynamoUnitOfWork]().on(NoCarAvailable, cancel)
        handler = idempotent(lambda: DynamoUnitOfWork(dynamodb, None, INBOX), handlers)
        consumer = _consumer(sqs, handler, counters)
        consumer.poll_once()
        assert sqs.queues[QUEUE] == []
        assert (counters.get("consumed"), counters.get("duplicatesDiscarded")) == (1, 1)
        assert dynamodb.transactions == 2 and dynamodb.rows(STATE) == [
            {"id": "ride_1", "status": "CANCELLED"}
        ]


def test_duplicates_raised_by_a_handler_are_acknowledged_on_a_fifo_queue_too() -> None:
    sqs, counters = Sqs(), Counters()
    sqs.put(FIFO, _event().to_json())
    _consumer(sqs, _raise(Duplicate("seen")), counters, queue=FIFO).poll_once()
    assert sqs.queues[FIFO] == [] and counters.get("duplicatesDiscarded") == 1
