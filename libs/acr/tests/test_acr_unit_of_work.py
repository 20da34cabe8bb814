"""The consumer's unit of work: state + outbox + idempotency marker in ONE transaction, and the dedup window.

Runs ``DynamoUnitOfWork`` against an in-memory DynamoDB that evaluates the real condition expressions.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from acr_exactly_once_fakes import Clock, FakeDynamoDB

from acr import catalog, unit_of_work
from acr.catalog.fleet import NoCarAvailable
from acr.consumer import idempotent
from acr.dynamo import from_item
from acr.envelope import CloudEvent
from acr.unit_of_work import MARKER_CONDITION, Conflict, Destination, Duplicate, DynamoUnitOfWork, Outgoing

INBOX, OUTBOX, STATE = "acr-svc-inbox", "acr-svc-outbox", "acr-svc-state"
BUS = Destination("bus", "acr-svc")


@pytest.fixture
def dynamodb() -> FakeDynamoDB:
    return FakeDynamoDB({INBOX: ("dedupKey",), OUTBOX: ("eventId",), STATE: ("id",)})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(unit_of_work, "time", clock)
    return clock


def _event(ride: str = "ride_1") -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id=ride, reason="x"), subject=ride)


def _uow(dynamodb: FakeDynamoDB, window_s: float = 60, on_commit: Any = None) -> DynamoUnitOfWork:
    return DynamoUnitOfWork(dynamodb, OUTBOX, INBOX, dedup_window_s=window_s, on_commit=on_commit)


def _consume(dynamodb: FakeDynamoDB, event: CloudEvent, window_s: float = 60) -> None:
    """Apply ``event``: bump a counter, publish one event, mark it consumed — one commit."""
    uow = _uow(dynamodb, window_s)
    current = dynamodb.row(STATE, id="counter")
    uow.tx.put(STATE, {"id": "counter", "n": (current or {"n": 0})["n"] + 1}, label="state")
    uow.record(Outgoing(_event(f"out-{event.id}"), BUS))
    uow.mark_consumed(event)
    uow.commit()


def _applied(dynamodb: FakeDynamoDB) -> int:
    return (dynamodb.row(STATE, id="counter") or {"n": 0})["n"]


def test_state_outbox_and_marker_commit_in_one_transaction(dynamodb: FakeDynamoDB, clock: Clock) -> None:
    event = _event()
    _consume(dynamodb, event)
    assert dynamodb.transactions == 1
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(OUTBOX)) == 1
    (marker,) = dynamodb.rows(INBOX)
    assert marker["dedupKey"] == f"{event.source}#{event.id}" == event.dedup_key
    assert marker["expiresAt"] == int(clock.now + 60)


def test_a_redelivery_or_resend_is_a_duplicate_and_changes_nothing(
    dynamodb: FakeDynamoDB, clock: Clock
) -> None:
    event = _event()
    _consume(dynamodb, event)
    for again in (event, event.resent(), event.resent().resent()):  # eventcount is not part of the key
        with pytest.raises(Duplicate):
            _consume(dynamodb, again)
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(OUTBOX)) == 1 and len(dynamodb.rows(INBOX)) == 1


def test_the_same_id_from_another_source_is_not_a_duplicate(dynamodb: FakeDynamoDB, clock: Clock) -> None:
    event = _event()
    _consume(dynamodb, event)
    _consume(dynamodb, event.model_copy(update={"source": "acr.other"}))
    assert _applied(dynamodb) == 2


def test_a_duplicate_after_the_dedup_window_is_processed_again_on_purpose(
    dynamodb: FakeDynamoDB, clock: Clock
) -> None:
    event = _event()
    _consume(dynamodb, event, window_s=10)  # marker expires at now + 10
    clock.advance(5)
    with pytest.raises(Duplicate):
        _consume(dynamodb, event, window_s=10)
    clock.advance(5)  # exactly at expiresAt: still inside the window
    with pytest.raises(Duplicate):
        _consume(dynamodb, event, window_s=10)
    clock.advance(1)  # expired: the marker counts as absent even though TTL has not deleted it
    assert len(dynamodb.rows(INBOX)) == 1
    _consume(dynamodb, event, window_s=10)
    assert _applied(dynamodb) == 2
    (marker,) = dynamodb.rows(INBOX)  # the marker was replaced, with a new window
    assert marker["expiresAt"] == int(clock.now + 10)
    with pytest.raises(Duplicate):
        _consume(dynamodb, event, window_s=10)
    assert _applied(dynamodb) == 2


def test_the_marker_condition_treats_an_expired_marker_as_absent(
    dynamodb: FakeDynamoDB, clock: Clock
) -> None:
    assert MARKER_CONDITION == "attribute_not_exists(dedupKey) OR expiresAt < :now"
    uow = _uow(dynamodb)
    uow.mark_consumed(_event())
    (put,) = uow.tx.operations
    assert put["Put"]["ConditionExpression"] == MARKER_CONDITION
    assert from_item(put["Put"]["ExpressionAttributeValues"]) == {":now": int(clock.now)}


def test_a_duplicate_wins_over_a_conflict_and_a_conflict_names_its_labels(
    dynamodb: FakeDynamoDB, clock: Clock
) -> None:
    event = _event()
    _consume(dynamodb, event)
    stale_write = _uow(dynamodb)
    stale_write.tx.put(STATE, {"id": "counter", "n": 9}, label="state", condition="attribute_not_exists(id)")
    stale_write.mark_consumed(event)
    with pytest.raises(Duplicate):  # the marker says it all: this message was already applied
        stale_write.commit()

    conflict = _uow(dynamodb)
    conflict.tx.put(STATE, {"id": "counter", "n": 9}, label="state", condition="attribute_not_exists(id)")
    conflict.mark_consumed(_event("ride_2"))
    with pytest.raises(Conflict) as raised:
        conflict.commit()
    assert raised.value.labels == ["state"]
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(INBOX)) == 1


def test_cancellation_reasons_only_in_the_message_are_understood(clock: Clock) -> None:
    dynamodb = FakeDynamoDB(
        {INBOX: ("dedupKey",), OUTBOX: ("eventId",), STATE: ("id",)}, message_only_reasons=True
    )
    event = _event()
    _consume(dynamodb, event)
    with pytest.raises(Duplicate):
        _consume(dynamodb, event)


def test_the_relay_is_woken_only_after_a_commit_that_recorded_events(
    dynamodb: FakeDynamoDB, clock: Clock
) -> None:
    wakes: list[int] = []
    event = _event()
    uow = _uow(dynamodb, on_commit=lambda: wakes.append(len(dynamodb.rows(OUTBOX))))
    uow.record(Outgoing(_event("out"), BUS))
    uow.mark_consumed(event)
    assert wakes == []
    uow.commit()
    assert wakes == [1]  # woken after the row was written

    duplicate = _uow(dynamodb, on_commit=lambda: wakes.append(-1))
    duplicate.record(Outgoing(_event("out-2"), BUS))
    duplicate.mark_consumed(event)
    with pytest.raises(Duplicate):
        duplicate.commit()
    silent = _uow(dynamodb, on_commit=lambda: wakes.append(-2))
    silent.mark_consumed(_event("ride_3"))
    silent.commit()
    assert wakes == [1] and len(dynamodb.rows(OUTBOX)) == 1  # nothing of the duplicate was published


def test_two_consumers_handling_the_same_event_at_once_change_the_state_once(
    dynamodb: FakeDynamoDB, clock: Clock
) -> None:
    """Both read the state before either commits; the marker lets exactly one commit win."""
    both_read = threading.Barrier(2, timeout=5)
    outcomes: list[str] = []

    def bump(uow: DynamoUnitOfWork, data: NoCarAvailable, event: CloudEvent) -> None:
        seen = (dynamodb.row(STATE, id="counter") or {"n": 0})["n"]
        uow.tx.put(
            STATE,
            {"id": "counter", "n": seen + 1},
            label="state",
            condition="attribute_not_exists(id) OR n = :seen",
            values={":seen": seen},
        )
        uow.record(Outgoing(_event(f"out-{event.id}"), BUS))
        both_read.wait()

    handle = idempotent(lambda: _uow(dynamodb), {NoCarAvailable: bump})
    event = _event()
    data = catalog.decode(event)

    def deliver(copy: CloudEvent) -> None:
        try:
            handle(copy, data)
            outcomes.append("applied")
        except Duplicate:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=deliver, args=(e,)) for e in (event, event.resent())]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(outcomes) == ["applied", "duplicate"]
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(OUTBOX)) == 1 and len(dynamodb.rows(INBOX)) == 1
