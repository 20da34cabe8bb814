"""The unit-of-work contract every consumer relies on, run against the testkit's in-memory twin
(``MemoryUnitOfWork``, the base of the services' fakes) AND ``DynamoUnitOfWork`` on in-process moto: events
go out only on commit, a marker makes a second delivery a duplicate, a failed condition is a conflict that
writes nothing, and after-commit actions run only after a commit went through."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from acr_exactly_once_fakes import INBOX, OUTBOX, STATE, in_process_dynamodb

from acr import catalog
from acr.catalog.base import EventData
from acr.catalog.fleet import CarReleased, NoCarAvailable
from acr.dynamo import DynamoUnitOfWork, from_item
from acr.envelope import CloudEvent
from acr.unit_of_work import Conflict, Duplicate, UnitOfWork
from acr_testkit.memory import MemoryUnitOfWork, MessageStore


@dataclass
class Backend:
    """A unit of work factory, a conditional state write in its terms, and what it published."""

    unit_of_work: Callable[[bool], UnitOfWork]  # marked?
    claim: Callable[[UnitOfWork, str], None]  # write ``id`` unless it exists (label "state")
    claimed: Callable[[], set[str]]
    published: Callable[[], list[EventData]]


def _memory() -> Backend:
    store = MessageStore()
    claims: set[str] = set()

    def claim(uow: UnitOfWork, key: str) -> None:
        assert isinstance(uow, MemoryUnitOfWork)
        uow.stage(lambda: "state" if key in claims else None, lambda: claims.add(key))

    return Backend(
        lambda marked: MemoryUnitOfWork(store, marked=marked),
        claim,
        lambda: set(claims),
        store.published,
    )


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield _memory()
        return
    with in_process_dynamodb() as dynamodb:

        def claim(uow: UnitOfWork, key: str) -> None:
            assert isinstance(uow, DynamoUnitOfWork)
            uow.tx.put(STATE, {"id": key}, label="state", condition="attribute_not_exists(id)")

        def published() -> list[EventData]:
            rows = sorted(dynamodb.rows(OUTBOX), key=lambda row: (row["createdAt"], row["eventId"]))
            return [catalog.decode(CloudEvent.from_json(row["event"])) for row in rows]

        yield Backend(
            lambda marked: DynamoUnitOfWork(dynamodb, OUTBOX, INBOX if marked else None),
            claim,
            lambda: {row["id"] for row in dynamodb.rows(STATE)},
            published,
        )


def _event(ride: str = "ride_1") -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id=ride, reason="none"), subject=ride)


def _released(ride: str) -> CarReleased:
    return CarReleased(ride_id=ride, car_id="car_1", reason="done")


def _handle(backend: Backend, event: CloudEvent, *, marked: bool = True, after: Any = None) -> None:
    """What the kernel does with one message: the handler's writes and events, the marker, one commit."""
    uow = backend.unit_of_work(marked)
    backend.claim(uow, event.dedup_key)
    uow.record(_released(str(event.subject)), subject=event.subject)
    if after is not None:
        uow.after_commit(after)
    uow.mark_consumed(event)
    uow.commit()


def test_events_go_out_only_when_the_unit_of_work_commits(backend: Backend) -> None:
    uow = backend.unit_of_work(True)
    uow.record(_released("ride_1"), subject="ride_1")
    uow.record(_released("ride_2"), subject="ride_2")
    assert backend.published() == []
    uow.commit()
    assert backend.published() == [_released("ride_1"), _released("ride_2")]


def test_a_second_delivery_is_a_duplicate_and_writes_nothing(backend: Backend) -> None:
    event = _event()
    done: list[str] = []
    _handle(backend, event, after=lambda: done.append("first"))
    with pytest.raises(Duplicate):
        _handle(backend, event.resent(), after=lambda: done.append("again"))
    assert done == ["first"]
    assert backend.published() == [_released("ride_1")]
    assert backend.claimed() == {event.dedup_key}


def test_the_same_id_from_another_source_is_another_message(backend: Backend) -> None:
    event = _event()
    _handle(backend, event)
    other = event.model_copy(update={"source": "acr.other", "subject": "ride_2"})
    _handle(backend, other)
    assert len(backend.published()) == 2 and len(backend.claimed()) == 2


def test_a_failed_condition_is_a_conflict_naming_its_label_and_writes_nothing(backend: Backend) -> None:
    first = backend.unit_of_work(True)
    backend.claim(first, "car_1")
    first.commit()
    done: list[str] = []
    lost = backend.unit_of_work(True)
    backend.claim(lost, "car_1")
    lost.record(_released("ride_1"), subject="ride_1")
    lost.mark_consumed(_event())
    lost.after_commit(lambda: done.append("lost"))
    with pytest.raises(Conflict) as conflict:
        lost.commit()
    assert conflict.value.labels == ["state"]
    assert backend.published() == [] and done == []
    _handle(backend, _event())  # its marker was not written: the message can still be consumed


def test_a_duplicate_wins_over_a_conflict(backend: Backend) -> None:
    event = _event()
    _handle(backend, event)
    again = backend.unit_of_work(True)
    backend.claim(again, event.dedup_key)  # would conflict too
    again.mark_consumed(event)
    with pytest.raises(Duplicate):
        again.commit()


def test_without_markers_a_second_delivery_is_handled_again(backend: Backend) -> None:
    event = _event()
    uow = backend.unit_of_work(False)
    uow.record(_released("ride_1"), subject="ride_1")
    uow.mark_consumed(event)
    uow.commit()
    again = backend.unit_of_work(False)
    again.record(_released("ride_1"), subject="ride_1")
    again.mark_consumed(event.resent())
    again.commit()  # idempotent by version elsewhere: the kernel keeps no marker
    assert len(backend.published()) == 2


def test_after_commit_actions_run_once_after_the_writes(backend: Backend) -> None:
    seen: list[set[str]] = []
    uow = backend.unit_of_work(True)
    backend.claim(uow, "car_1")
    uow.after_commit(lambda: seen.append(backend.claimed()))
    uow.mark_consumed(_event())
    assert seen == []
    uow.commit()
    assert seen == [{"car_1"}]


def test_the_outbox_row_is_the_event_the_catalog_addresses() -> None:
    """What the DynamoDB outbox holds for the relay (the memory twin keeps the ``Outgoing`` itself)."""
    with in_process_dynamodb() as dynamodb:
        uow = DynamoUnitOfWork(dynamodb, OUTBOX, INBOX)
        uow.record(_released("ride_1"), subject="ride_1")
        uow.commit()
        (row,) = [from_item(i) for i in dynamodb.scan(TableName=OUTBOX)["Items"]]
    memory = MessageStore()
    twin = MemoryUnitOfWork(memory)
    twin.record(_released("ride_1"), subject="ride_1")
    twin.commit()
    (out,) = memory.outbox
    assert (
        (row["destination"], row.get("group")) == (str(out.destination), out.group) == ("bus:acr-fleet", None)
    )
    assert CloudEvent.from_json(row["event"]).type == out.event.type == "acme.acr.fleet.CarReleased"
