"""Injected faults (``ACR_FAULTS``): what each one does, and that a healthy message always gets through."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from acr_exactly_once_fakes import INBOX, STATE, Clock, Dynamo, ScriptedChannel, Sqs, in_process_dynamodb
from pydantic import ValidationError

from acr import catalog, dynamo, faults
from acr.catalog.base import EventData
from acr.catalog.fleet import NoCarAvailable
from acr.catalog.ride import RideUpdated
from acr.channels import FaultyChannel, TransportError
from acr.consumer import CONFLICT_ATTEMPTS, Handlers, MessageHandler, SqsConsumer, idempotent
from acr.dynamo import DynamoUnitOfWork
from acr.envelope import CloudEvent
from acr.faults import KNOWN, MAX_HITS_PER_KEY, Faults, parse
from acr.metrics import Counters
from acr.publishing import publish
from acr.settings import Settings
from acr.unit_of_work import Outgoing, outgoing

QUEUE, DLQ = "https://sqs/acr-svc-events", "https://sqs/acr-svc-events-dlq"
FIFO = "https://sqs/acr-svc-history.fifo"


def _event(ride: str = "ride_1") -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id=ride, reason="x"), subject=ride)


def _consumer(sqs: Sqs, handler, injected: Faults, counters: Counters, queue: str = QUEUE) -> SqsConsumer:  # type: ignore[no-untyped-def]
    return SqsConsumer(
        name="svc",
        sqs=sqs,
        queue_url=queue,
        dead_letter_queue_url=DLQ,
        handler=handler,
        wait_s=0,
        counters=counters,
        faults=injected,
    )


def _always(name: str) -> Faults:
    return Faults({name: 1.0}, seed=7)


# --- the spec ---------------------------------------------------------------------------------------------
def test_parse_reads_names_and_rates() -> None:
    assert parse("") == {}
    assert parse("publish.lost_ack=0.2, deliver.duplicate=0.1") == {
        "publish.lost_ack": 0.2,
        "deliver.duplicate": 0.1,
    }
    assert parse("consume.crash_before_ack") == {"consume.crash_before_ack": 1.0}
    assert KNOWN >= {"publish.throttle", "publish.partial_failure", "deliver.reorder", "gateway.timeout"}


@pytest.mark.parametrize(
    "spec", ["publish.nope=0.1", "lost_ack=0.2", "deliver.duplicate=1.5", "deliver.duplicate=-0.1", "x"]
)
def test_parse_rejects_unknown_names_and_bad_rates(spec: str) -> None:
    with pytest.raises(ValueError):
        parse(spec)


def test_settings_fail_fast_on_a_bad_fault_spec() -> None:
    with pytest.raises(ValidationError):
        Settings(faults="publish.lost_ack=2")


def test_faults_are_off_unless_named_and_repeatable_with_a_seed() -> None:
    assert not Faults().enabled and not Faults().hit("publish.throttle")
    first, second = Faults({"publish.throttle": 0.5}, seed=3), Faults({"publish.throttle": 0.5}, seed=3)
    draws = [first.hit("publish.throttle") for _ in range(50)]
    assert draws == [second.hit("publish.throttle") for _ in range(50)]
    assert 0 < sum(draws) < 50 and first.injected["publish.throttle"] == sum(draws)


def test_a_fault_hits_one_key_at_most_max_hits_times() -> None:
    injected = _always("consume.crash_before_ack")
    hits = [injected.hit("consume.crash_before_ack", "crash-before:e1") for _ in range(5)]
    assert hits == [True] * MAX_HITS_PER_KEY + [False] * (5 - MAX_HITS_PER_KEY)
    assert injected.hit("consume.crash_before_ack", "crash-before:e2")  # another message is fair game
    assert all(injected.hit("consume.crash_before_ack") for _ in range(5))  # unkeyed: no bound


def test_process_faults_is_shared_and_follows_the_spec() -> None:
    one = faults.process_faults("deliver.duplicate=0.5", 1)
    assert faults.process_faults("deliver.duplicate=0.5", 1) is one
    assert faults.process_faults("deliver.duplicate=0.5", 2) is not one


# --- consumer-side faults ---------------------------------------------------------------------------------
def test_crash_before_ack_abandons_without_handling_and_the_message_gets_through() -> None:
    sqs, counters, seen = Sqs(), Counters(), []
    sqs.put(QUEUE, _event().to_json())
    injected = _always("consume.crash_before_ack")
    consumer = _consumer(sqs, lambda e, d: seen.append(e.id), injected, counters)
    for _ in range(MAX_HITS_PER_KEY):
        consumer.poll_once()
        assert seen == [] and len(sqs.queues[QUEUE]) == 1 and sqs.deleted == []
    assert sqs.visibility  # abandoned with a backoff, as a crash would leave it
    consumer.poll_once()
    assert len(seen) == 1 and sqs.queues[QUEUE] == [] and sqs.queues.get(DLQ) is None
    assert injected.injected["consume.crash_before_ack"] == MAX_HITS_PER_KEY


@pytest.fixture
def counting_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MessageHandler, Callable[[], int]]]:
    """An idempotent handler over DynamoDB (in-process moto), and a function giving how often it applied."""
    monkeypatch.setattr(dynamo, "time", Clock())
    with in_process_dynamodb() as dynamodb:

        def applied() -> int:
            return int((dynamodb.row(STATE, id="applied") or {"n": 0})["n"])

        def bump(uow: DynamoUnitOfWork, data: EventData, event: CloudEvent) -> None:
            uow.tx.put(STATE, {"id": "applied", "n": applied() + 1}, label="state")

        handlers = Handlers[DynamoUnitOfWork]().on(NoCarAvailable, bump)
        yield idempotent(lambda: DynamoUnitOfWork(dynamodb, None, INBOX), handlers), applied


def test_crash_after_commit_handles_then_abandons_and_the_redelivery_is_a_duplicate(
    counting_handler: tuple[MessageHandler, Callable[[], int]],
) -> None:
    handler, applied = counting_handler
    sqs, counters = Sqs(), Counters()
    sqs.put(QUEUE, _event().to_json())
    consumer = _consumer(sqs, handler, _always("consume.crash_after_commit"), counters)
    consumer.poll_once()
    assert applied() == 1 and len(sqs.queues[QUEUE]) == 1 and sqs.deleted == []  # committed, not acked
    for _ in range(MAX_HITS_PER_KEY):
        consumer.poll_once()
    assert sqs.queues[QUEUE] == [] and applied() == 1
    assert (counters.get("consumed"), counters.get("duplicatesDiscarded")) == (1, MAX_HITS_PER_KEY)


def test_deliver_duplicate_puts_a_copy_on_the_queue_that_is_then_discarded(
    counting_handler: tuple[MessageHandler, Callable[[], int]],
) -> None:
    handler, applied = counting_handler
    sqs, counters = Sqs(), Counters()
    event = _event()
    sqs.put(QUEUE, event.to_json())
    consumer = _consumer(sqs, handler, _always("deliver.duplicate"), counters)
    consumer.poll_once()
    (copy,) = sqs.queues[QUEUE]
    assert copy["Body"] == event.to_json() and "rh-m1" in sqs.deleted  # original acked, copy queued
    for _ in range(MAX_HITS_PER_KEY + 1):
        consumer.poll_once()
    assert sqs.queues[QUEUE] == [] and applied() == 1
    assert (counters.get("consumed"), counters.get("duplicatesDiscarded")) == (1, MAX_HITS_PER_KEY)


def test_deliver_duplicate_on_a_fifo_queue_carries_group_and_dedup_ids(
    counting_handler: tuple[MessageHandler, Callable[[], int]],
) -> None:
    handler, _ = counting_handler
    sqs, counters = Sqs(), Counters()
    event = _event()
    sqs.put(FIFO, event.to_json())
    _consumer(sqs, handler, _always("deliver.duplicate"), counters, queue=FIFO).poll_once()
    (copy,) = sqs.queues[FIFO]
    assert (copy["MessageGroupId"], copy["MessageDeduplicationId"]) == ("ride_1", f"dup-{event.id}")


def test_deliver_reorder_resends_with_a_delay_without_handling() -> None:
    sqs, counters, seen = Sqs(), Counters(), []
    event = _event()
    sqs.put(QUEUE, event.to_json())
    consumer = _consumer(sqs, lambda e, d: seen.append(e.id), _always("deliver.reorder"), counters)
    consumer.poll_once()
    (later,) = sqs.queues[QUEUE]
    assert seen == [] and "rh-m1" in sqs.deleted
    assert (later["Body"], later["DelaySeconds"]) == (event.to_json(), 3)
    for _ in range(MAX_HITS_PER_KEY):
        consumer.poll_once()
    assert seen == [event.id] and sqs.queues[QUEUE] == []


def test_deliver_reorder_leaves_a_fifo_queue_alone() -> None:
    sqs, counters, seen = Sqs(), Counters(), []
    sqs.put(FIFO, _event().to_json())
    _consumer(
        sqs, lambda e, d: seen.append(e.id), _always("deliver.reorder"), counters, queue=FIFO
    ).poll_once()
    assert len(seen) == 1 and sqs.queues[FIFO] == []


def test_every_consumer_fault_at_once_still_lets_each_message_through_exactly_once(
    counting_handler: tuple[MessageHandler, Callable[[], int]],
) -> None:
    handler, applied = counting_handler
    sqs, counters = Sqs(), Counters()
    names = ("consume.crash_before_ack", "consume.crash_after_commit", "deliver.duplicate", "deliver.reorder")
    injected = Faults(dict.fromkeys(names, 1.0), seed=11)
    for i in range(3):
        sqs.put(QUEUE, _event(f"ride_{i}").to_json())
    consumer = _consumer(sqs, handler, injected, counters)
    for _ in range(20):
        if not consumer.poll_once():
            break
    assert sqs.queues[QUEUE] == [] and sqs.queues.get(DLQ) is None
    assert applied() == 3 and counters.get("consumed") == 3
    assert all(injected.injected[n] > 0 for n in names)


# --- publish-side faults ----------------------------------------------------------------------------------
def _batch(n: int) -> list[Outgoing]:
    return [outgoing(NoCarAvailable(ride_id=f"r{i}", reason="x"), subject=f"r{i}") for i in range(n)]


def test_injected_throttling_and_partial_failures_are_per_entry_and_not_sent() -> None:
    inner = ScriptedChannel()
    injected = Faults({"publish.throttle": 0.3, "publish.partial_failure": 0.3}, seed=5)
    batch = _batch(10)
    results = FaultyChannel(inner, injected).send(batch)
    throttled = {i for i, r in enumerate(results) if r == "ThrottlingException"}
    failed = {i for i, r in enumerate(results) if r == "InternalFailure"}
    accepted = {i for i, r in enumerate(results) if r is None}
    assert throttled and failed and accepted  # this seed exercises all three outcomes
    assert [o.event.id for o in inner.calls[0]] == [batch[i].event.id for i in sorted(accepted)]


def test_a_fully_throttled_batch_never_reaches_the_channel() -> None:
    inner = ScriptedChannel()
    results = FaultyChannel(inner, _always("publish.throttle")).send(_batch(3))
    assert results == ["ThrottlingException"] * 3 and inner.calls == []


def test_a_lost_ack_sends_the_batch_but_raises_so_the_whole_batch_is_to_be_resent_with_the_same_ids() -> None:
    inner = ScriptedChannel()
    batch = _batch(3)
    with pytest.raises(TransportError):
        FaultyChannel(ScriptedChannel(), _always("publish.lost_ack")).send(batch)

    report = publish(FaultyChannel(inner, _always("publish.lost_ack")), batch)
    assert [o.event.id for o in inner.calls[0]] == [o.event.id for o in batch]  # it did go out
    assert [(r.outgoing.event.id, r.reason) for r in report.retry] == [
        (o.event.id, "transport") for o in batch
    ]
    assert not report.sent and not report.dead


# --- channel-scoped faults and windows ----------------------------------------------------------------------
def _update(version: int) -> Outgoing:
    data = RideUpdated(ride_id="ride_1", rider_id="rdr_1", version=version, ride={"requestedAt": "t"})
    return outgoing(data, subject="ride_1", sequence=version)


def test_eventbridge_throttle_hits_only_a_bus_and_sns_failure_only_a_topic() -> None:
    injected = Faults({"eventbridge.throttle": 1.0, "sns.failure": 1.0}, seed=1)
    bus, topic = ScriptedChannel(), ScriptedChannel()
    assert FaultyChannel(bus, injected, "bus").send(_batch(2)) == ["ThrottlingException"] * 2
    assert FaultyChannel(topic, injected, "topic").send([_update(1), _update(2)]) == ["InternalFailure"] * 2
    assert bus.calls == [] and topic.calls == []
    other = ScriptedChannel()
    assert FaultyChannel(other, injected).send(_batch(2)) == [None, None]  # a channel of no kind: untouched
    assert injected.injected == {"eventbridge.throttle": 2, "sns.failure": 2}


def test_the_publish_faults_apply_to_every_kind_of_channel() -> None:
    injected = _always("publish.throttle")
    assert FaultyChannel(ScriptedChannel(), injected, "topic").send([_update(1)]) == ["ThrottlingException"]
    assert FaultyChannel(ScriptedChannel(), injected, "bus").send(_batch(1)) == ["ThrottlingException"]


class _Counting(Faults):
    """Counts the coin flips asked for."""

    asked = 0

    def hit(self, name: str, key: str | None = None) -> bool:
        self.asked += 1
        return super().hit(name, key)


def test_a_faulty_channel_with_nothing_open_passes_the_batch_through_untouched() -> None:
    clock = Clock()
    injected = _Counting(clock=clock.time)
    inner = ScriptedChannel([[None, "ValidationException"]])
    batch = _batch(2)
    assert FaultyChannel(inner, injected, "bus").send(batch) == [None, "ValidationException"]
    assert inner.calls == [batch] and injected.asked == 0  # no coin flipped when no fault can happen

    injected.open("eventbridge.throttle", 1.0, 10)
    assert FaultyChannel(inner, injected, "bus").send(batch) == ["ThrottlingException"] * 2
    clock.advance(10)
    assert FaultyChannel(inner, injected, "bus").send(batch) == [None, None]
    assert not injected.active


def test_a_window_adds_a_fault_until_it_closes_on_top_of_the_configured_rates() -> None:
    clock = Clock()
    injected = Faults({"publish.throttle": 0.5}, seed=3, clock=clock.time)
    assert not Faults(clock=clock.time).active and injected.active
    window = injected.open("publish.throttle", 0.5, 30)
    other = injected.open("sns.failure", 1.0, 60)
    assert window.until == clock.now + 30 and window.fault_id != other.fault_id
    assert injected.rate("publish.throttle") == 0.75  # independent causes: 1 - (1 - 0.5)(1 - 0.5)
    assert injected.windows() == [window, other]  # soonest to close first
    clock.advance(30)
    assert injected.windows() == [other] and injected.rate("publish.throttle") == 0.5
    assert all(injected.hit("sns.failure", "k") for _ in range(MAX_HITS_PER_KEY))
    assert not injected.hit("sns.failure", "k")  # a window keeps the per-key bound
    clock.advance(30)
    assert injected.windows() == [] and injected.rate("sns.failure") == 0


@pytest.mark.parametrize(
    ("fault", "rate", "seconds"),
    [
        ("publish.nope", 0.5, 10),
        ("sns.failure", 1.5, 10),
        ("sns.failure", -0.1, 10),
        ("sns.failure", 1, 0.5),
        ("sns.failure", 1, 601),
    ],
)
def test_a_window_refuses_unknown_faults_and_bad_numbers(fault: str, rate: float, seconds: float) -> None:
    with pytest.raises(ValueError):
        Faults().open(fault, rate, seconds)


def test_windows_can_be_opened_against_an_emulator_never_in_aws_mode() -> None:
    assert faults.windows_allowed("http://127.0.0.1:4566") and not faults.windows_allowed("")


# --- faults inside the unit of work -------------------------------------------------------------------------
class _Store:
    """DynamoDB on in-process moto with the state a handler bumps and the inbox of markers."""

    def __init__(self, dynamodb: Dynamo) -> None:
        self.dynamodb = dynamodb
        self.handlers = Handlers[DynamoUnitOfWork]().on(NoCarAvailable, self._bump)

    def _bump(self, uow: DynamoUnitOfWork, data: EventData, event: CloudEvent) -> None:
        uow.tx.put(STATE, {"id": "applied", "n": self.applied() + 1}, label="state")

    def applied(self) -> int:
        return int((self.dynamodb.row(STATE, id="applied") or {"n": 0})["n"])

    def marker(self, event_id: str) -> dict[str, Any] | None:
        return next((r for r in self.dynamodb.rows(INBOX) if r["eventId"] == event_id), None)

    def handler(
        self, injected: Faults, unit_of_work: type[DynamoUnitOfWork] = DynamoUnitOfWork
    ) -> MessageHandler:
        return idempotent(lambda: unit_of_work(self.dynamodb, None, INBOX), self.handlers, faults=injected)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Store]:
    monkeypatch.setattr(dynamo, "time", Clock())
    with in_process_dynamodb() as dynamodb:
        yield _Store(dynamodb)


def test_a_crash_before_commit_writes_nothing_and_the_message_comes_again_until_it_applies_once(
    store: _Store,
) -> None:
    sqs, counters = Sqs(), Counters()
    event = _event()
    sqs.put(QUEUE, event.to_json())
    injected = _always("uow.crash_before_commit")
    consumer = _consumer(sqs, store.handler(injected), injected, counters)
    for _ in range(MAX_HITS_PER_KEY):
        consumer.poll_once()
        assert store.applied() == 0 and store.marker(event.id) is None  # handled, then nothing written
        assert len(sqs.queues[QUEUE]) == 1 and sqs.visibility  # left for redelivery, as a crash leaves it
    consumer.poll_once()
    assert store.applied() == 1 and store.marker(event.id) is not None and sqs.queues[QUEUE] == []
    assert injected.injected["uow.crash_before_commit"] == MAX_HITS_PER_KEY and counters.get("consumed") == 1


def test_an_injected_conflict_is_handled_again_in_the_same_delivery_and_applies_once(store: _Store) -> None:
    sqs, counters = Sqs(), Counters()
    sqs.put(QUEUE, _event().to_json())
    injected = _always("uow.conflict")
    _consumer(sqs, store.handler(injected), injected, counters).poll_once()
    assert store.applied() == 1 and sqs.queues[QUEUE] == [] and counters.get("consumed") == 1
    assert injected.injected["uow.conflict"] == MAX_HITS_PER_KEY < CONFLICT_ATTEMPTS


class _MarkerApart(DynamoUnitOfWork):
    """A broken unit of work: it writes the marker at once, in a transaction of its own."""

    def mark_consumed(self, event: CloudEvent) -> None:
        apart = DynamoUnitOfWork(self.dynamodb, None, self.inbox_table)
        DynamoUnitOfWork.mark_consumed(apart, event)
        apart.commit()


@pytest.mark.parametrize("unit_of_work", [DynamoUnitOfWork, _MarkerApart], ids=["atomic", "marker-apart"])
def test_a_crash_before_commit_catches_a_marker_written_apart_from_the_effect(
    store: _Store, unit_of_work: type[DynamoUnitOfWork]
) -> None:
    """What the fault is for: with the marker written apart, the crash leaves a marker and no effect, and
    the redelivery is discarded as a duplicate: the effect is lost, which a check of effects catches."""
    sqs, counters = Sqs(), Counters()
    sqs.put(QUEUE, _event().to_json())
    injected = Faults({"uow.crash_before_commit": 1.0}, seed=1)
    consumer = _consumer(sqs, store.handler(injected, unit_of_work), injected, counters)
    for _ in range(MAX_HITS_PER_KEY + 1):
        consumer.poll_once()
    assert sqs.queues[QUEUE] == []
    assert store.applied() == (1 if unit_of_work is DynamoUnitOfWork else 0)


def test_every_consumer_and_unit_of_work_fault_at_once_still_applies_each_message_once(store: _Store) -> None:
    sqs, counters = Sqs(), Counters()
    names = (
        "consume.crash_before_ack",
        "consume.crash_after_commit",
        "deliver.duplicate",
        "deliver.reorder",
        "uow.crash_before_commit",
        "uow.conflict",
    )
    injected = Faults(dict.fromkeys(names, 1.0), seed=11)
    for i in range(3):
        sqs.put(QUEUE, _event(f"ride_{i}").to_json())
    consumer = _consumer(sqs, store.handler(injected), injected, counters)
    for _ in range(30):
        if not consumer.poll_once():
            break
    assert sqs.queues[QUEUE] == [] and sqs.queues.get(DLQ) is None
    assert store.applied() == 3 and counters.get("consumed") == 3
    assert all(injected.injected[n] > 0 for n in names)
