"""The outbox relay: leases, SENT rows with their final eventcount, the producer DLQ and its redrive."""

from __future__ import annotations

import json

import pytest
from acr_exactly_once_fakes import (
    OUTBOX,
    PRODUCER_DLQ,
    Clock,
    Dynamo,
    ScriptedChannel,
    Sqs,
    outbox_dynamodb,
    relay_clock,
)

from acr import relay
from acr.catalog.fleet import NoCarAvailable
from acr.channels import TransportError
from acr.dynamo import DynamoUnitOfWork
from acr.envelope import CloudEvent
from acr.metrics import Counters
from acr.relay import Relay, redrive

clock, dynamodb = relay_clock, outbox_dynamodb  # the fixtures under the names the tests use


def _record(dynamodb: Dynamo, n: int, clock: Clock) -> list[CloudEvent]:
    """Commit ``n`` events to the outbox the way a service does (a unit of work), a millisecond apart
    (the pending index orders rows by when they were recorded)."""
    uow = DynamoUnitOfWork(dynamodb, OUTBOX)
    for i in range(n):
        uow.record(NoCarAvailable(ride_id=f"r{i}", reason="x"), subject=f"r{i}")
        clock.advance(0.001)
    uow.commit()
    return [o.event for o in uow.recorded]


def _relay(dynamodb: Dynamo, sqs: Sqs, channel: ScriptedChannel, lease_s: float = 30) -> Relay:
    return Relay(
        dynamodb=dynamodb,
        sqs=sqs,
        outbox_table=OUTBOX,
        dead_letter_queue_url=PRODUCER_DLQ,
        channels={"bus": channel},
        lease_s=lease_s,
        counters=Counters(),
    )


def _rounds(sender: Relay, clock: Clock, n: int) -> None:
    """``n`` rounds, each after the wait the relay asks for (its backoff, or its poll interval)."""
    for _ in range(n):
        sender.drain_once()
        clock.advance(sender.idle_s())


def _status(dynamodb: Dynamo, event: CloudEvent) -> tuple[str | None, int | None, bool]:
    row = dynamodb.row(OUTBOX, eventId=event.id)
    assert row is not None
    return row.get("status"), row.get("eventcount"), "pending" in row


def test_sent_rows_are_marked_sent_with_their_final_eventcount(dynamodb: Dynamo, clock: Clock) -> None:
    first, second = _record(dynamodb, 2, clock)
    channel = ScriptedChannel([[None, "ThrottlingException"], ["InternalFailure"]])
    sender = _relay(dynamodb, Sqs(), channel)
    assert sender.drain_once() == 2
    assert _status(dynamodb, first) == ("SENT", 1, False)
    assert _status(dynamodb, second) == (None, 1, True)  # pending, its next attempt on the row
    _rounds(sender, clock, 3)
    assert [[(o.event.id, o.event.eventcount) for o in call] for call in channel.calls] == [
        [(first.id, 1), (second.id, 1)],
        [(second.id, 2)],
        [(second.id, 3)],
    ]
    assert _status(dynamodb, second) == ("SENT", 3, False)
    assert _relay(dynamodb, Sqs(), ScriptedChannel()).drain_once() == 0  # nothing pending any more


def test_batches_hold_at_most_ten_entries(dynamodb: Dynamo, clock: Clock) -> None:
    events = _record(dynamodb, 23, clock)
    channel = ScriptedChannel()
    assert _relay(dynamodb, Sqs(), channel).drain_once() == 23
    assert [len(call) for call in channel.calls] == [10, 10, 3]
    assert sorted(channel.sent_ids()) == sorted(e.id for e in events)


def test_a_row_leased_by_one_relay_is_not_claimed_by_another_until_the_lease_expires(
    dynamodb: Dynamo, clock: Clock
) -> None:
    (event,) = _record(dynamodb, 1, clock)
    crashing = ScriptedChannel([RuntimeError("relay process died mid-batch")])
    with pytest.raises(RuntimeError):
        _relay(dynamodb, Sqs(), crashing, lease_s=30).drain_once()
    assert _status(dynamodb, event) == (None, None, True)  # still pending, leased

    other = ScriptedChannel()
    second = _relay(dynamodb, Sqs(), other, lease_s=30)
    clock.advance(29)
    assert second.drain_once() == 0 and other.calls == []
    clock.advance(2)
    assert second.drain_once() == 1
    assert other.sent_ids() == [event.id]  # the same id: consumers dedupe if the first send got out
    assert _status(dynamodb, event)[0] == "SENT"


def test_dead_entries_go_to_the_producer_dlq_with_their_reason(dynamodb: Dynamo, clock: Clock) -> None:
    good, bad = _record(dynamodb, 2, clock)
    sqs = Sqs()
    _relay(dynamodb, sqs, ScriptedChannel([[None, "ValidationException"]])).drain_once()
    (dead,) = sqs.queues[PRODUCER_DLQ]
    assert sqs.attribute(dead, "reason") == "ValidationException"
    body = json.loads(dead["Body"])
    assert body["destination"] == "bus:acr-fleet" and body["event"]["id"] == bad.id
    assert _status(dynamodb, bad) == ("DEAD", 1, False)
    assert _status(dynamodb, good) == ("SENT", 1, False)


def test_a_retryable_failure_is_never_dead_lettered_however_often_it_happens(
    dynamodb: Dynamo, clock: Clock
) -> None:
    (event,) = _record(dynamodb, 1, clock)
    sqs = Sqs()
    channel = ScriptedChannel([["ThrottlingException"], TransportError("timeout"), ["InternalFailure"]] * 10)
    sender, started = _relay(dynamodb, sqs, channel), clock.now
    for _ in range(200):
        if _status(dynamodb, event)[0] == "SENT":
            break
        _rounds(sender, clock, 1)
    assert sqs.queues.get(PRODUCER_DLQ) is None
    assert clock.now - started > 5 * 60  # 30 failures, most of them 15..30 s apart
    assert [call[0].event.eventcount for call in channel.calls] == list(range(1, 32))
    assert _status(dynamodb, event) == ("SENT", 31, False)


def test_redrive_puts_a_dead_event_back_with_the_same_id_and_eventcount_plus_one(
    dynamodb: Dynamo, clock: Clock
) -> None:
    (event,) = _record(dynamodb, 1, clock)
    sqs = Sqs()
    _relay(dynamodb, sqs, ScriptedChannel([["ValidationException"]])).drain_once()
    assert redrive(sqs=sqs, dynamodb=dynamodb, dead_letter_queue_url=PRODUCER_DLQ, outbox_table=OUTBOX) == 1
    assert sqs.queues[PRODUCER_DLQ] == []
    row = dynamodb.row(OUTBOX, eventId=event.id)
    assert row is not None and row["pending"] == "P" and "status" not in row
    assert CloudEvent.from_json(row["event"]).eventcount == 2

    channel = ScriptedChannel()
    _relay(dynamodb, sqs, channel).drain_once()
    ((sent,),) = channel.calls
    assert (sent.event.id, sent.event.eventcount) == (event.id, 2)
    assert _status(dynamodb, event) == ("SENT", 2, False)


def test_the_ops_timeline_lists_what_was_recorded_about_a_subject(dynamodb: Dynamo, clock: Clock) -> None:
    events = _record(dynamodb, 2, clock)
    _rounds(_relay(dynamodb, Sqs(), ScriptedChannel([[None, "InternalFailure"]])), clock, 2)
    (about,) = relay.events_about(dynamodb, OUTBOX, "r1")
    assert (about["id"], about["status"], about["eventcount"]) == (events[1].id, "SENT", 2)


def test_a_row_resent_after_its_lease_expired_carries_eventcount_plus_one(
    dynamodb: Dynamo, clock: Clock
) -> None:
    (event,) = _record(dynamodb, 1, clock)

    class SendsThenDies(ScriptedChannel):
        def send(self, batch):  # type: ignore[no-untyped-def]
            super().send(batch)
            raise RuntimeError("relay died after PutEvents, before marking the row")

    first = SendsThenDies()
    with pytest.raises(RuntimeError):
        _relay(dynamodb, Sqs(), first).drain_once()
    clock.advance(31)
    second = ScriptedChannel()
    _relay(dynamodb, Sqs(), second).drain_once()
    assert first.calls[0][0].event.eventcount == 1
    assert second.calls[0][0].event.eventcount == 2
