"""Injected faults (``ACR_FAULTS``): what each one does, and that a healthy message always gets through."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from acr_exactly_once_fakes import INBOX, STATE, Clock, ScriptedChannel, Sqs, in_process_dynamodb, no_sleep
from pydantic import ValidationError

from acr import catalog, dynamo, faults
from acr.catalog.base import EventData
from acr.catalog.fleet import NoCarAvailable
from acr.channels import FaultyChannel, TransportError
from acr.consumer import Handlers, MessageHandler, SqsConsumer, idempotent
from acr.dynamo import DynamoUnitOfWork
from acr.envelope import CloudEvent
from acr.faults import KNOWN, MAX_HITS_PER_KEY, Faults, parse
from acr.metrics import Counters
from acr.publishing import RetryPolicy, publish
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


def test_injected_failures_are_resent_with_the_same_ids_and_eventcount_plus_one() -> None:
    inner = ScriptedChannel()
    injected = Faults({"publish.partial_failure": 0.5}, seed=2)
    batch = _batch(6)
    report = publish(FaultyChannel(inner, injected), batch, RetryPolicy(attempts=10), sleep=no_sleep)
    assert sorted(o.event.id for o in report.sent) == sorted(o.event.id for o in batch) and not report.dead
    assert sorted(inner.sent_ids()) == sorted(o.event.id for o in batch)  # each sent once, for real
    assert report.resent["InternalFailure"] == injected.injected["publish.partial_failure"] > 0
    first = {o.event.id for o in inner.calls[0]}
    assert any(o.event.eventcount > 1 for o in report.sent if o.event.id not in first)


class _HealingChannel(ScriptedChannel):
    """Accepts everything; the network heals (no more lost acks) from the second call on."""

    def __init__(self, injected: Faults) -> None:
        super().__init__()
        self.injected = injected

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        if self.calls:
            self.injected.rates.clear()
        return super().send(batch)


def test_a_lost_ack_sends_the_batch_but_raises_so_the_whole_batch_is_resent_with_the_same_ids() -> None:
    injected = _always("publish.lost_ack")
    inner = _HealingChannel(injected)
    batch = _batch(3)
    with pytest.raises(TransportError):
        FaultyChannel(ScriptedChannel(), _always("publish.lost_ack")).send(batch)

    report = publish(FaultyChannel(inner, injected), batch, sleep=no_sleep)
    first, second = inner.calls
    assert [o.event.id for o in first] == [o.event.id for o in second] == [o.event.id for o in batch]
    assert [o.event.eventcount for o in first] == [1, 1, 1]
    assert [o.event.eventcount for o in second] == [2, 2, 2]
    assert report.resent == {"transport": 3} and not report.dead
