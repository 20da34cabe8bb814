"""The consumer's unit of work: state + outbox + idempotency marker in ONE transaction, and the dedup window.

Runs ``DynamoUnitOfWork`` against in-process moto, which evaluates the real condition expressions and
answers a cancelled transaction with its per-item reasons.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from acr_exactly_once_fakes import INBOX, OUTBOX, STATE, Clock, Dynamo, in_process_dynamodb
from botocore.exceptions import ClientError

from acr import catalog, dynamo
from acr.catalog.fleet import NoCarAvailable
from acr.consumer import Handlers, idempotent
from acr.dynamo import (
    DynamoUnitOfWork,
    ServiceUnitOfWork,
    Transaction,
    TransactionCancelled,
    _reasons_from_message,
    commit,
    from_item,
)
from acr.envelope import CloudEvent
from acr.unit_of_work import MARKER_CONDITION, Conflict, Duplicate, EffectsOnly


@pytest.fixture
def dynamodb() -> Iterator[Dynamo]:
    with in_process_dynamodb() as client:
        yield client


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(dynamo, "time", clock)
    return clock


def _event(ride: str = "ride_1") -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id=ride, reason="x"), subject=ride)


def _caused(ride: str) -> NoCarAvailable:
    """A payload a handler records (the catalog addresses it: the fleet bus)."""
    return NoCarAvailable(ride_id=ride, reason="x")


def _uow(dynamodb: Dynamo, window_s: float = 60, on_commit: Any = None) -> DynamoUnitOfWork:
    return DynamoUnitOfWork(dynamodb, OUTBOX, INBOX, dedup_window_s=window_s, on_commit=on_commit)


def _consume(dynamodb: Dynamo, event: CloudEvent, window_s: float = 60) -> None:
    """Apply ``event``: bump a counter, publish one event, mark it consumed — one commit."""
    uow = _uow(dynamodb, window_s)
    current = dynamodb.row(STATE, id="counter")
    uow.tx.put(STATE, {"id": "counter", "n": (current or {"n": 0})["n"] + 1}, label="state")
    uow.record(_caused(f"out-{event.id}"), subject=f"out-{event.id}")
    uow.mark_consumed(event)
    uow.commit()


def _applied(dynamodb: Dynamo) -> int:
    return (dynamodb.row(STATE, id="counter") or {"n": 0})["n"]


def test_state_outbox_and_marker_commit_in_one_transaction(dynamodb: Dynamo, clock: Clock) -> None:
    event = _event()
    _consume(dynamodb, event)
    assert dynamodb.transactions == 1
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(OUTBOX)) == 1
    (marker,) = dynamodb.rows(INBOX)
    assert marker["dedupKey"] == f"{event.source}#{event.id}" == event.dedup_key
    assert marker["expiresAt"] == int(clock.now + 60)


def test_a_redelivery_or_resend_is_a_duplicate_and_changes_nothing(dynamodb: Dynamo, clock: Clock) -> None:
    event = _event()
    _consume(dynamodb, event)
    for again in (event, event.resent(), event.resent().resent()):  # eventcount is not part of the key
        with pytest.raises(Duplicate):
            _consume(dynamodb, again)
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(OUTBOX)) == 1 and len(dynamodb.rows(INBOX)) == 1


def test_the_same_id_from_another_source_is_not_a_duplicate(dynamodb: Dynamo, clock: Clock) -> None:
    event = _event()
    _consume(dynamodb, event)
    _consume(dynamodb, event.model_copy(update={"source": "acr.other"}))
    assert _applied(dynamodb) == 2


def test_a_duplicate_after_the_dedup_window_is_processed_again_on_purpose(
    dynamodb: Dynamo, clock: Clock
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


def test_the_marker_condition_treats_an_expired_marker_as_absent(dynamodb: Dynamo, clock: Clock) -> None:
    assert MARKER_CONDITION == "attribute_not_exists(dedupKey) OR expiresAt < :now"
    uow = _uow(dynamodb)
    uow.mark_consumed(_event())
    (put,) = uow.tx.operations
    assert put["Put"]["ConditionExpression"] == MARKER_CONDITION
    assert from_item(put["Put"]["ExpressionAttributeValues"]) == {":now": int(clock.now)}


def test_a_duplicate_wins_over_a_conflict_and_a_conflict_names_its_labels(
    dynamodb: Dynamo, clock: Clock
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


class _MessageOnlyReasons:
    """A DynamoDB client like some emulators: a cancelled transaction has its reasons only in its message."""

    def __init__(self, reasons: str) -> None:
        self.reasons = reasons

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        message = (
            f"Transaction cancelled, please refer cancellation reasons for specific reasons [{self.reasons}]"
        )
        raise ClientError(
            {"Error": {"Code": "TransactionCanceledException", "Message": message}}, "TransactWriteItems"
        )


def test_reasons_are_read_from_the_message_when_the_response_has_none() -> None:
    assert _reasons_from_message("cancelled [None, ConditionalCheckFailed]", 2) == [
        None,
        "ConditionalCheckFailed",
    ]
    assert _reasons_from_message("cancelled [ConditionalCheckFailed, None, None]", 2) == [
        "ConditionalCheckFailed",
        None,
    ]
    assert _reasons_from_message("cancelled, no reasons given", 3) == [None, None, None]

    tx = Transaction()
    tx.put(STATE, {"id": "a"}, label="state")
    tx.put(INBOX, {"dedupKey": "k"}, label="marker", condition="attribute_not_exists(dedupKey)")
    with pytest.raises(TransactionCancelled) as cancelled:
        commit(_MessageOnlyReasons("None, ConditionalCheckFailed"), tx)
    assert cancelled.value.reasons == [None, "ConditionalCheckFailed"]
    assert cancelled.value.failed("marker") and not cancelled.value.failed("state")


@pytest.mark.parametrize(
    ("reasons", "raised"),
    [("None, ConditionalCheckFailed", Duplicate), ("ConditionalCheckFailed, None", Conflict)],
)
def test_cancellation_reasons_only_in_the_message_are_understood(reasons: str, raised: type) -> None:
    uow = DynamoUnitOfWork(_MessageOnlyReasons(reasons), OUTBOX, INBOX)
    uow.tx.put(STATE, {"id": "counter", "n": 1}, label="state", condition="attribute_not_exists(id)")
    uow.mark_consumed(_event())
    with pytest.raises(raised) as failed:
        uow.commit()
    if isinstance(failed.value, Conflict):
        assert failed.value.labels == ["state"]


def test_moto_names_the_reasons_in_the_response(dynamodb: Dynamo, clock: Clock) -> None:
    """What the kernel reads first (``CancellationReasons``), so nothing depends on the message's form."""
    dynamodb.put_item(TableName=STATE, Item={"id": {"S": "counter"}})
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": OUTBOX, "Item": {"eventId": {"S": "e1"}}}},
                {
                    "Put": {
                        "TableName": STATE,
                        "Item": {"id": {"S": "counter"}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
            ]
        )
    reasons = cancelled.value.response.get("CancellationReasons", [])
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]


def test_the_relay_is_woken_only_after_a_commit_that_recorded_events(dynamodb: Dynamo, clock: Clock) -> None:
    wakes: list[int] = []
    event = _event()
    uow = _uow(dynamodb, on_commit=lambda: wakes.append(len(dynamodb.rows(OUTBOX))))
    uow.record(_caused("out"), subject="out")
    uow.mark_consumed(event)
    assert wakes == []
    uow.commit()
    assert wakes == [1]  # woken after the row was written

    duplicate = _uow(dynamodb, on_commit=lambda: wakes.append(-1))
    duplicate.record(_caused("out-2"), subject="out-2")
    duplicate.mark_consumed(event)
    with pytest.raises(Duplicate):
        duplicate.commit()
    silent = _uow(dynamodb, on_commit=lambda: wakes.append(-2))
    silent.mark_consumed(_event("ride_3"))
    silent.commit()
    assert wakes == [1] and len(dynamodb.rows(OUTBOX)) == 1  # nothing of the duplicate was published


def test_two_consumers_handling_the_same_event_at_once_change_the_state_once(
    dynamodb: Dynamo, clock: Clock
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
        uow.record(_caused(f"out-{event.id}"), subject=f"out-{event.id}")
        both_read.wait()

    handle = idempotent(lambda: _uow(dynamodb), Handlers[DynamoUnitOfWork]().on(NoCarAvailable, bump))
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


def test_what_a_unit_of_work_records_goes_where_the_catalog_says(dynamodb: Dynamo, clock: Clock) -> None:
    uow = _uow(dynamodb)
    uow.record(_caused("ride_9"), subject="ride_9", sequence=4)
    uow.commit()
    (row,) = dynamodb.rows(OUTBOX)
    event = CloudEvent.from_json(row["event"])
    assert (row["destination"], row.get("group"), row["pending"], row["subject"]) == (
        "bus:acr-fleet",
        None,
        "P",
        "ride_9",
    )
    assert (event.type, event.source, event.sequence) == (
        "acme.acr.fleet.NoCarAvailable",
        "acr.car-dispatcher",
        4,
    )
    assert catalog.decode(event) == _caused("ride_9")


def test_a_unit_of_work_without_an_outbox_cannot_record_and_without_an_inbox_keeps_no_marker(
    dynamodb: Dynamo, clock: Clock
) -> None:
    unmarked = DynamoUnitOfWork(dynamodb, None, None)
    with pytest.raises(RuntimeError):
        unmarked.record(_caused("ride_1"), subject="ride_1")
    event = _event()
    unmarked.mark_consumed(event)
    assert unmarked.tx.operations == []
    unmarked.commit()  # nothing staged: nothing written, no transaction
    assert dynamodb.transactions == 0 and dynamodb.rows(INBOX) == []


def test_a_service_unit_of_work_stages_into_the_kernels(dynamodb: Dynamo, clock: Clock) -> None:
    base = _uow(dynamodb)
    service = ServiceUnitOfWork(base)
    done: list[str] = []
    base.tx.put(STATE, {"id": "counter", "n": 1}, label="state")  # what a repository adds
    service.record(_caused("ride_1"), subject="ride_1")
    service.mark_consumed(_event())
    service.after_commit(lambda: done.append("after"))
    service.commit()
    assert dynamodb.transactions == 1 and done == ["after"]
    assert _applied(dynamodb) == 1 and len(dynamodb.rows(OUTBOX)) == 1 and len(dynamodb.rows(INBOX)) == 1


def test_effects_only_runs_its_actions_on_commit_and_publishes_nothing() -> None:
    uow = EffectsOnly()
    done: list[str] = []
    uow.mark_consumed(_event())
    uow.after_commit(lambda: done.append("pushed"))
    with pytest.raises(RuntimeError):
        uow.record(_caused("ride_1"), subject="ride_1")
    assert done == []
    uow.commit()
    uow.commit()  # the actions ran once
    assert done == ["pushed"]


def test_a_checked_item_is_not_written_and_a_failed_check_cancels_the_whole_transaction(
    dynamodb: Dynamo,
) -> None:
    dynamodb.put_item(TableName=STATE, Item=dynamo.to_item({"id": "lease", "owner": "me"}))
    held = Transaction()
    held.check(
        STATE,
        {"id": "lease"},
        label="lease",
        condition="#o = :me",
        names={"#o": "owner"},
        values={":me": "me"},
    )
    held.put(STATE, {"id": "work", "n": 1}, label="state")
    commit(dynamodb, held)
    lost = Transaction()
    lost.check(
        STATE,
        {"id": "lease"},
        label="lease",
        condition="#o = :me",
        names={"#o": "owner"},
        values={":me": "you"},
    )
    lost.put(STATE, {"id": "work", "n": 2}, label="state")
    with pytest.raises(TransactionCancelled) as cancelled:
        commit(dynamodb, lost)
    assert cancelled.value.failed("lease") and not cancelled.value.failed("state")
    items = {row["id"]: row for row in map(from_item, dynamodb.scan(TableName=STATE)["Items"])}
    assert items == {"lease": {"id": "lease", "owner": "me"}, "work": {"id": "work", "n": 1}}
