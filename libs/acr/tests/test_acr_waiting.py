"""Waiting is not failing: a message parked for as long as its condition takes never burns receives and
never reaches a DLQ; on a FIFO queue it is held in memory with its group, which keeps its order."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from acr_exactly_once_fakes import Clock, FifoSqs, Sqs

from acr import catalog, consumer
from acr.catalog.base import EventData
from acr.catalog.fleet import NoCarAvailable
from acr.consumer import HOLD_MARGIN_S, MAX_PARKS, Park, SqsConsumer, Wait
from acr.envelope import CloudEvent
from acr.metrics import Counters

QUEUE, DLQ = "https://sqs/acr-svc-events", "https://sqs/acr-svc-events-dlq"
FIFO, FIFO_DLQ = "https://sqs/acr-svc-history.fifo", "https://sqs/acr-svc-history-dlq.fifo"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000.0)
    monkeypatch.setattr(consumer, "time", clock)
    return clock


def _event(ride: str, n: int = 0) -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id=ride, reason=f"n{n}"), subject=ride)


class Gate:
    """A handler that waits (``Wait``, or ``Park`` when ``bounded``) on a ride until the ride is opened,
    and records what it handled, in order."""

    def __init__(self, bounded: bool = False) -> None:
        self.open: set[str] = set()
        self.handled: list[str] = []
        self.tries = 0
        self.bounded = bounded

    def __call__(self, event: CloudEvent, data: EventData) -> None:
        assert isinstance(data, NoCarAvailable)
        self.tries += 1
        if data.ride_id not in self.open:
            raise (Park if self.bounded else Wait)(f"{data.ride_id} is not ready")
        self.handled.append(f"{data.ride_id}/{data.reason}")


def _consumer(sqs: object, handler: Callable[[CloudEvent, EventData], None], counters: Counters, queue: str):  # type: ignore[no-untyped-def]
    return SqsConsumer(
        name="svc",
        sqs=sqs,  # type: ignore[arg-type]
        queue_url=queue,
        dead_letter_queue_url=FIFO_DLQ if queue == FIFO else DLQ,
        handler=handler,
        wait_s=0,
        counters=counters,
    )


def _run(sqs_consumer: SqsConsumer, clock: Clock, seconds: float, step: float = 1.0) -> None:
    end = clock.now + seconds
    while clock.now < end:
        sqs_consumer.poll_once()
        clock.advance(step)


# --- standard queues ----------------------------------------------------------------------------------------
def test_a_message_waiting_for_hours_on_a_standard_queue_never_burns_a_receive_nor_reaches_the_dlq() -> None:
    sqs, counters, gate = Sqs(), Counters(), Gate()
    sqs.put(QUEUE, _event("ride_1").to_json())
    sqs_consumer = _consumer(sqs, gate, counters, QUEUE)
    delays = []
    for _ in range(500):  # 500 parks of up to 30 s: over 4 hours
        sqs_consumer.poll_once()
        (parked,) = sqs.queues[QUEUE]
        assert parked["Attributes"]["ApproximateReceiveCount"] == "1"  # a new message each time
        delays.append(parked["DelaySeconds"])
    assert delays[:3] == [2, 4, 6] and set(delays[14:]) == {30} and sum(delays) > 4 * 3600
    assert sqs.attribute(sqs.queues[QUEUE][0], "parked") == "500"
    assert sqs.queues.get(DLQ) is None and counters.get("deadLettered") == 0

    gate.open.add("ride_1")
    sqs_consumer.poll_once()
    assert gate.handled == ["ride_1/n0"] and sqs.queues[QUEUE] == []
    assert (counters.get("parked"), counters.get("consumed")) == (500, 1)


def test_a_bounded_park_still_ends_as_an_orphan_after_max_parks() -> None:
    sqs, counters = Sqs(), Counters()
    sqs.put(QUEUE, _event("ride_1").to_json())
    sqs_consumer = _consumer(sqs, Gate(bounded=True), counters, QUEUE)
    for _ in range(MAX_PARKS + 1):
        sqs_consumer.poll_once()
    assert sqs.queues[QUEUE] == [] and sqs.attribute(sqs.queues[DLQ][0], "reason") == "orphan_update"


# --- FIFO queues --------------------------------------------------------------------------------------------
def test_a_fifo_message_waiting_for_hours_is_held_without_burning_receives_and_keeps_its_group_order(
    clock: Clock,
) -> None:
    sqs, counters, gate = FifoSqs(FIFO, FIFO_DLQ, clock), Counters(), Gate()
    for n in range(3):
        sqs.put(_event("ride_1", n).to_json(), group="ride_1")
    sqs_consumer = _consumer(sqs, gate, counters, FIFO)
    _run(sqs_consumer, clock, 3 * 3600, step=5)

    assert gate.handled == [] and sqs.dead == [] and sqs.sent == []  # held: never the DLQ
    assert [m["receives"] for m in sqs.messages] == [1, 1, 1]  # received once, however long it waits
    assert 3 * 3600 / 30 <= gate.tries <= 3 * 3600 / 30 + 20  # tried every 30 s at most, not more often
    assert counters.get("parked") == gate.tries

    gate.open.add("ride_1")
    _run(sqs_consumer, clock, 40)
    assert gate.handled == ["ride_1/n0", "ride_1/n1", "ride_1/n2"]  # in the group's order
    assert sqs.messages == [] and sqs.dead == [] and counters.get("consumed") == 3


def test_other_fifo_groups_flow_while_one_is_held(clock: Clock) -> None:
    sqs, counters, gate = FifoSqs(FIFO, FIFO_DLQ, clock), Counters(), Gate()
    gate.open.add("ride_2")
    sqs.put(_event("ride_1", 0).to_json(), group="ride_1")
    sqs.put(_event("ride_2", 0).to_json(), group="ride_2")
    sqs.put(_event("ride_1", 1).to_json(), group="ride_1")
    sqs.put(_event("ride_2", 1).to_json(), group="ride_2")
    sqs_consumer = _consumer(sqs, gate, counters, FIFO)
    sqs_consumer.poll_once()
    assert gate.handled == ["ride_2/n0", "ride_2/n1"]  # ride_1/n1 waits behind ride_1/n0
    gate.open.add("ride_1")
    _run(sqs_consumer, clock, 5)
    assert gate.handled[2:] == ["ride_1/n0", "ride_1/n1"] and sqs.messages == []


def test_a_held_fifo_group_stays_invisible_past_its_next_try_and_the_long_poll_ends_by_then(
    clock: Clock,
) -> None:
    sqs, counters = FifoSqs(FIFO, FIFO_DLQ, clock), Counters()
    sqs.put(_event("ride_1").to_json(), group="ride_1")
    sqs_consumer = SqsConsumer(
        name="svc",
        sqs=sqs,
        queue_url=FIFO,
        dead_letter_queue_url=FIFO_DLQ,
        handler=Gate(),
        wait_s=20,  # type: ignore[arg-type]
        counters=counters,
    )
    sqs_consumer.poll_once()
    (held,) = sqs.messages
    assert held["visible_at"] == clock.now + 2 + HOLD_MARGIN_S
    assert sqs_consumer._wait() == 2  # noqa: SLF001 - the long poll returns when the held group is due


def test_a_fifo_message_parked_max_times_by_a_bounded_park_is_an_orphan(clock: Clock) -> None:
    sqs, counters = FifoSqs(FIFO, FIFO_DLQ, clock), Counters()
    sqs.put(_event("ride_1", 0).to_json(), group="ride_1")
    sqs.put(_event("ride_1", 1).to_json(), group="ride_1")
    gate = Gate(bounded=True)
    sqs_consumer = _consumer(sqs, gate, counters, FIFO)
    _run(sqs_consumer, clock, 2 * 31 * 30)  # one after the other, in order
    assert [m["MessageAttributes"]["reason"]["StringValue"] for m in sqs.sent] == ["orphan_update"] * 2
    assert sqs.dead == [] and sqs.messages == []  # sent to the DLQ by the consumer, not by receives


def test_a_failing_fifo_message_is_not_overtaken_by_the_rest_of_its_group(clock: Clock) -> None:
    sqs, counters, handled = FifoSqs(FIFO, FIFO_DLQ, clock), Counters(), []
    for n in range(3):
        sqs.put(_event("ride_1", n).to_json(), group="ride_1")
    failures = [RuntimeError("emulator hiccup")]

    def handler(event: CloudEvent, data: EventData) -> None:
        assert isinstance(data, NoCarAvailable)
        if data.reason == "n0" and failures:
            raise failures.pop()
        handled.append(data.reason)

    sqs_consumer = _consumer(sqs, handler, counters, FIFO)
    sqs_consumer.poll_once()
    assert handled == []  # n1 and n2 came in the same batch: handed back, not handled before n0
    _run(sqs_consumer, clock, 10)
    assert handled == ["n0", "n1", "n2"] and sqs.messages == []


def test_stopping_hands_the_held_messages_back(clock: Clock) -> None:
    sqs, counters = FifoSqs(FIFO, FIFO_DLQ, clock), Counters()
    for n in range(12):  # more than one visibility request takes
        sqs.put(_event(f"ride_{n}").to_json(), group=f"ride_{n}")
    sqs_consumer = _consumer(sqs, Gate(), counters, FIFO)
    sqs_consumer.poll_once()
    sqs_consumer.poll_once()
    assert all(m["visible_at"] > clock.now for m in sqs.messages) and len(sqs.messages) == 12
    stop = threading.Event()
    stop.set()
    sqs_consumer.run(stop)
    assert all(m["visible_at"] == clock.now for m in sqs.messages)  # visible at once, for the next consumer
