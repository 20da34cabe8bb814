"""The kernel's consumer commits ONE unit of work per consumed message: the handler stages, the kernel marks
and commits; a lost race is handled again on a fresh unit of work, a duplicate writes nothing, and a type
the handler table does not know is dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import pytest

from acr import catalog
from acr.catalog.base import EventData
from acr.catalog.fleet import CarOutOfService, CarReleased, NoCarAvailable
from acr.consumer import CONFLICT_ATTEMPTS, Handlers, SqsConsumer, idempotent
from acr.envelope import CloudEvent
from acr.metrics import Counters
from acr.unit_of_work import Conflict
from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from acr_testkit.sqs import FakeSqs

QUEUE, DLQ = "https://sqs/acr-svc-events", "https://sqs/acr-svc-events-dlq"


class CountingUnitOfWork(MemoryUnitOfWork):
    """Counts the calls to ``commit`` (``commits`` counts only those that went through)."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__(fleet.messages, before_commit=fleet.rival_writes)
        self.commit_calls = 0

    def commit(self) -> None:
        self.commit_calls += 1
        super().commit()


@dataclass
class Fleet:
    """The state a handler changes (a version per car), and every unit of work opened on it."""

    messages: MessageStore = field(default_factory=MessageStore)
    versions: dict[str, int] = field(default_factory=dict)
    opened: list[CountingUnitOfWork] = field(default_factory=list)
    handled: int = 0
    rivals: int = 0  # how many commits in a row another writer gets in first

    def unit_of_work(self) -> CountingUnitOfWork:
        uow = CountingUnitOfWork(self)
        self.opened.append(uow)
        return uow

    def rival_writes(self) -> None:
        if self.rivals:
            self.rivals -= 1
            self.versions["car_1"] = self.versions.get("car_1", 0) + 1

    @property
    def committed(self) -> int:
        return sum(u.commits for u in self.opened)

    @property
    def attempted(self) -> int:
        return sum(u.commit_calls for u in self.opened)


def on_car_out_of_service(
    uow: CountingUnitOfWork, data: CarOutOfService, event: CloudEvent, *, fleet: Fleet
) -> None:
    """Release the car's ride: a versioned write of the car and one event, both staged."""
    fleet.handled += 1
    seen = fleet.versions.get(data.car_id, 0)

    def changed() -> str | None:
        return "car" if fleet.versions.get(data.car_id, 0) != seen else None

    def write() -> None:
        fleet.versions[data.car_id] = seen + 1

    uow.stage(changed, write)
    uow.record(CarReleased(ride_id="ride_1", car_id=data.car_id, reason=data.reason), subject="ride_1")


def handlers(fleet: Fleet) -> Handlers[CountingUnitOfWork]:
    return Handlers[CountingUnitOfWork]().on(CarOutOfService, partial(on_car_out_of_service, fleet=fleet))


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


def _event(data: EventData, subject: str = "car_1") -> CloudEvent:
    return catalog.record(data, subject=subject)


def _out_of_service() -> CloudEvent:
    return _event(CarOutOfService(car_id="car_1", reason="flat tyre"))


def _consumer(sqs: FakeSqs, fleet: Fleet, counters: Counters) -> SqsConsumer:
    return SqsConsumer(
        name="svc",
        sqs=sqs,
        queue_url=QUEUE,
        dead_letter_queue_url=DLQ,
        handler=idempotent(fleet.unit_of_work, handlers(fleet)),
        wait_s=0,
        counters=counters,
    )


def _consume(sqs: FakeSqs, consumer: SqsConsumer, event: CloudEvent) -> None:
    sqs.put(QUEUE, event.to_json())
    consumer.poll_once()


def test_each_consumed_message_commits_exactly_one_unit_of_work(fleet: Fleet) -> None:
    sqs, counters = FakeSqs(), Counters()
    consumer = _consumer(sqs, fleet, counters)
    first = _out_of_service()

    _consume(sqs, consumer, first)  # a first delivery: one unit of work, committed once
    assert (fleet.committed, fleet.attempted, len(fleet.opened)) == (1, 1, 1)

    _consume(sqs, consumer, first.resent())  # a duplicate: its one commit writes nothing
    assert (fleet.committed, fleet.attempted, len(fleet.opened)) == (1, 2, 2)
    assert counters.get("duplicatesDiscarded") == 1

    fleet.rivals = 1  # another writer changes the car right before this message's first commit
    _consume(sqs, consumer, _out_of_service())
    assert fleet.handled == 4  # handled again on a fresh unit of work, after the lost race
    assert (fleet.committed, fleet.attempted, len(fleet.opened)) == (2, 4, 4)

    assert all(u.commit_calls == 1 for u in fleet.opened)  # no unit of work is committed twice
    assert sqs.queues[QUEUE] == [] and counters.get("consumed") == 2
    assert [type(d).__name__ for d in fleet.messages.published()] == ["CarReleased", "CarReleased"]
    assert len(fleet.messages.markers) == 2
    assert fleet.versions["car_1"] == 3  # two messages and the rival's write


def test_a_handler_that_keeps_losing_races_gives_up_and_the_message_is_redelivered(fleet: Fleet) -> None:
    sqs, counters = FakeSqs(), Counters()
    consumer = _consumer(sqs, fleet, counters)
    fleet.rivals = CONFLICT_ATTEMPTS
    _consume(sqs, consumer, _out_of_service())
    assert fleet.handled == CONFLICT_ATTEMPTS and fleet.committed == 0
    assert fleet.messages.outbox == [] and fleet.messages.markers == set()
    (left,) = sqs.queues[QUEUE]
    assert sqs.deleted == [] and sqs.visibility == {left["ReceiptHandle"]: 2}  # back after a short backoff
    assert sqs.queues.get(DLQ) is None and counters.get("consumed") == 0

    consumer.poll_once()  # the redelivery, with no rival any more
    assert fleet.committed == 1 and sqs.queues[QUEUE] == [] and counters.get("consumed") == 1


def test_the_kernel_raises_the_last_conflict_after_its_attempts(fleet: Fleet) -> None:
    fleet.rivals = 3
    handle = idempotent(fleet.unit_of_work, handlers(fleet), attempts=3)
    event = _out_of_service()
    with pytest.raises(Conflict) as lost:
        handle(event, catalog.decode(event))
    assert lost.value.labels == ["car"] and fleet.handled == 3 and fleet.committed == 0


def test_a_type_the_handler_table_does_not_know_is_dead_lettered(fleet: Fleet) -> None:
    sqs, counters = FakeSqs(), Counters()
    unexpected = _event(NoCarAvailable(ride_id="ride_1", reason="none"), subject="ride_1")
    _consume(sqs, _consumer(sqs, fleet, counters), unexpected)
    assert fleet.opened == [] and fleet.handled == 0
    assert sqs.queues[QUEUE] == []
    (dead,) = sqs.queues[DLQ]
    assert dead["Body"] == unexpected.to_json()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unexpected_type"
    assert counters.get("deadLettered") == 1
