"""Exactly-once effects in ride-manager: the ride history projection (idempotent by version), updates that
arrive before their ride (parked, then applied), and two consumers racing on the same event."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from ride_manager_fakes import (
    MemoryHistoryUnitOfWork,
    MemoryRideUnitOfWork,
    RideStore,
    StaticDispatch,
    StaticGeo,
)

from acr import catalog, clock
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned
from acr.catalog.ride import RideUpdated
from acr.consumer import MessageHandler, Park, PoisonMessage, SqsConsumer, Stale, idempotent
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS, Counters
from acr.unit_of_work import Duplicate
from acr_testkit.sqs import FakeSqs
from ride_manager import handlers
from ride_manager.commands import PlaceRef, RequestQuote, RequestRide
from ride_manager.domain import Deadlines, Ride, RideStatus
from ride_manager.projection import HISTORY_HANDLERS

MAX_ACTIVE = 3  # ACR_MAX_ACTIVE_RIDES' default

A = Place(label="1 Harbour Street, 00100", lat=60.16, lon=24.93, address_id="A1")
B = Place(label="9 Station Road, 00130", lat=60.18, lon=24.96, address_id="A2")
EVENTS, EVENTS_DLQ = "https://sqs/acr-ride-manager-events", "https://sqs/acr-ride-manager-events-dlq"
HISTORY = "https://sqs/acr-ride-manager-history.fifo"


class _Sqs(FakeSqs):
    """``FakeSqs`` whose re-sent (parked) messages can be received again."""

    def __init__(self) -> None:
        super().__init__()
        self._sent = itertools.count(1)

    def send_message(self, QueueUrl: str, MessageBody: str, **kwargs: Any) -> None:  # noqa: N803
        message_id = f"s{next(self._sent)}"
        self.queues.setdefault(QueueUrl, []).append(
            {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": MessageBody, **kwargs}
        )


def _snapshot(
    version: int, ride_id: str = "ride_1", status: str = "REQUESTED"
) -> tuple[CloudEvent, RideUpdated]:
    data = RideUpdated(
        ride_id=ride_id,
        rider_id="rdr_1",
        version=version,
        ride={"rideId": ride_id, "requestedAt": "2026-01-01T00:00:00Z", "status": status, "version": version},
    )
    return catalog.record(data, subject=ride_id, sequence=version), data


def test_the_cloudevent_sequence_decides_not_the_snapshot() -> None:
    """A snapshot whose event is behind the stored one is stale, whatever version its payload claims."""
    store = RideStore()
    project = _projector(store)
    project(*_snapshot(3, status="CAR_ASSIGNED"))
    _, late = _snapshot(5, status="LATE")
    with pytest.raises(Stale):
        project(catalog.record(late, subject="ride_1", sequence=2), late)
    assert [row.ride["status"] for row in store.history.values()] == ["CAR_ASSIGNED"]


def _projector(store: RideStore, before_commit: Any = None) -> MessageHandler:
    return idempotent(lambda: MemoryHistoryUnitOfWork(store, before_commit), HISTORY_HANDLERS)


# --- the ride history projection ----------------------------------------------------------------------
def test_a_newer_version_overwrites_and_the_same_or_an_older_one_is_stale() -> None:
    store = RideStore()
    project = _projector(store)
    project(*_snapshot(1))
    project(*_snapshot(3, status="CAR_ASSIGNED"))
    for version in (3, 2, 1):  # a duplicate and two late arrivals change nothing
        with pytest.raises(Stale):
            project(*_snapshot(version, status="STALE"))
    ((key, row),) = store.history.items()
    assert (row.ride_id, row.version) == ("ride_1", 3)
    assert key == ("rdr_1", "2026-01-01T00:00:00Z#ride_1")
    assert row.ride["status"] == "CAR_ASSIGNED"
    project(*_snapshot(4, status="COMPLETED"))
    assert store.history[key].ride["status"] == "COMPLETED"
    assert store.markers == set()  # idempotent by version: no markers


def test_each_ride_has_its_own_row_and_version() -> None:
    store = RideStore()
    project = _projector(store)
    project(*_snapshot(2, ride_id="ride_1"))
    project(*_snapshot(1, ride_id="ride_2"))
    assert {(r.ride_id, r.version) for r in store.history.values()} == {("ride_1", 2), ("ride_2", 1)}


def test_the_projector_handles_ride_snapshots_only() -> None:
    store = RideStore()
    with pytest.raises(PoisonMessage):
        _projector(store)(*_assigned("ride_1"))
    assert store.history == {}


def test_a_snapshot_that_lost_a_race_is_handled_again_and_found_stale() -> None:
    store = RideStore()
    raced: list[int] = []

    def a_newer_snapshot_lands_first() -> None:
        if not raced:
            raced.append(5)
            _projector(store)(*_snapshot(5, status="COMPLETED"))

    with pytest.raises(Stale):
        _projector(store, a_newer_snapshot_lands_first)(*_snapshot(4))
    assert [(r.version, r.ride["status"]) for r in store.history.values()] == [(5, "COMPLETED")]


def test_the_projection_lag_is_measured_when_a_snapshot_is_stored() -> None:
    store = RideStore()
    event, data = _snapshot(1)
    late = CloudEvent.model_validate(event.model_dump() | {"time": clock.parse("2026-01-01T00:00:00Z")})
    COUNTERS.projection_lag_ms = 0.0
    _projector(store)(late, data)
    assert COUNTERS.projection_lag_ms > 1000  # the event was stamped long ago
    COUNTERS.projection_lag_ms = 0.0
    with pytest.raises(Stale):
        _projector(store)(late.resent(), data)
    assert COUNTERS.projection_lag_ms == 0.0  # nothing stored, nothing measured


def test_on_its_fifo_queue_a_stale_snapshot_is_acknowledged_and_counted() -> None:
    sqs, counters, store = _Sqs(), Counters(), RideStore()
    for version in (2, 1, 2):
        sqs.put(HISTORY, _snapshot(version)[0].to_json())
    consumer = SqsConsumer(
        name="history",
        sqs=sqs,
        queue_url=HISTORY,
        dead_letter_queue_url="https://sqs/acr-ride-manager-history-dlq.fifo",
        handler=_projector(store),
        wait_s=0,
        counters=counters,
    )
    consumer.poll_once()
    assert sqs.queues[HISTORY] == []
    assert (counters.get("consumed"), counters.get("staleDropped")) == (1, 2)
    assert [r.version for r in store.history.values()] == [2]


@pytest.mark.parametrize("seed", range(12))
def test_two_replicas_in_any_interleaving_leave_each_ride_at_its_newest_snapshot_never_going_back(
    seed: int,
) -> None:
    """Why the projection needs no applied sequence of its own: each snapshot is the
    whole ride, so skipping a version loses nothing, and the version condition keeps the newest. Two
    replicas get every version of three rides in a random order, with resends; before some commits the
    other replica commits the next delivery first."""
    rng = random.Random(seed)
    store = RideStore()
    deliveries = [_snapshot(v, ride_id=f"ride_{r}") for r in range(3) for v in range(1, 6)]
    deliveries += rng.sample(deliveries, 4)
    rng.shuffle(deliveries)
    stored: dict[str, list[int]] = {}

    def deliver(replica: MessageHandler) -> None:
        try:
            replica(*deliveries.pop())
        except Stale:
            pass
        for row in store.history.values():
            stored.setdefault(row.ride_id, []).append(row.version)

    def the_other_goes_first() -> None:
        if deliveries and rng.random() < 0.5:
            deliver(replicas[rng.randrange(2)])

    replicas = [_projector(store, the_other_goes_first) for _ in range(2)]
    while deliveries:
        deliver(replicas[rng.randrange(2)])
    assert {row.ride_id: row.version for row in store.history.values()} == {f"ride_{r}": 5 for r in range(3)}
    assert all(versions == sorted(versions) for versions in stored.values())  # never an older one over it


# --- an update before its create ----------------------------------------------------------------------
def _assigned(ride_id: str) -> tuple[CloudEvent, CarAssigned]:
    data = CarAssigned(
        ride_id=ride_id,
        car_id="car-00001",
        car_lat=60.1,
        car_lon=24.9,
        pickup=A,
        dropoff=B,
        pickup_eta_seconds=80,
        assigned_at=clock.parse("2026-01-01T00:00:00Z"),
    )
    return catalog.record(data, subject=ride_id), data


def _book(store: RideStore) -> Ride:
    quote = handlers.request_quote(
        RequestQuote("rdr_1", PlaceRef("A1"), PlaceRef("A2")),
        geo=StaticGeo({"A1": A, "A2": B}),
        dispatch=StaticDispatch(90),
        uow=MemoryRideUnitOfWork(store),
        ttl_s=300,
    )
    return handlers.request_ride(
        RequestRide("rdr_1", quote.quote_id, "k1", "h1"),
        uow_factory=lambda: MemoryRideUnitOfWork(store),
        key_ttl_s=86400,
        max_active=MAX_ACTIVE,
        rules=Deadlines(),
    )


def _handler(store: RideStore, before_commit: Any = None) -> MessageHandler:
    return idempotent(
        lambda: MemoryRideUnitOfWork(store, before_commit), handlers.handlers(rules=Deadlines())
    )


def test_car_assigned_for_a_ride_not_there_yet_is_parked_then_applied_once_the_ride_exists() -> None:
    store = RideStore()
    ride = _book(store)
    del store.rides[ride.ride_id]  # CarAssigned overtakes the ride's creation
    event, data = _assigned(ride.ride_id)
    markers, outbox = set(store.markers), len(store.outbox)
    with pytest.raises(Park):
        _handler(store)(event, data)
    assert store.markers == markers and len(store.outbox) == outbox  # nothing applied, not marked consumed

    store.rides[ride.ride_id] = ride  # the create lands
    _handler(store)(event, data)
    stored = store.rides[ride.ride_id]
    assert (stored.status, stored.version, stored.car_id) == (RideStatus.CAR_ASSIGNED, 2, "car-00001")
    assert event.dedup_key in store.markers


def test_through_the_sqs_consumer_the_parked_event_comes_back_and_is_applied() -> None:
    store, sqs, counters = RideStore(), _Sqs(), Counters()
    ride = _book(store)
    store.rides.clear()  # CarAssigned overtakes the ride's creation
    event, _ = _assigned(ride.ride_id)
    sqs.put(EVENTS, event.to_json())
    consumer = SqsConsumer(
        name="events",
        sqs=sqs,
        queue_url=EVENTS,
        dead_letter_queue_url=EVENTS_DLQ,
        handler=_handler(store),
        wait_s=0,
        counters=counters,
    )
    consumer.poll_once()
    (parked,) = sqs.queues[EVENTS]
    assert parked["MessageAttributes"]["parked"]["StringValue"] == "1" and parked["DelaySeconds"] == 2
    assert counters.get("parked") == 1

    store.rides[ride.ride_id] = ride  # the create lands
    consumer.poll_once()
    assert sqs.queues[EVENTS] == [] and sqs.queues.get(EVENTS_DLQ) is None
    assert store.rides[ride.ride_id].status == RideStatus.CAR_ASSIGNED
    assert counters.get("consumed") == 1


# --- concurrent duplicate delivery --------------------------------------------------------------------
def test_two_consumers_handling_the_same_event_at_once_change_the_ride_once() -> None:
    store = RideStore()
    ride = _book(store)
    event, data = _assigned(ride.ride_id)
    outbox_before = len(store.outbox)
    raced: list[str] = []

    def the_other_consumer_commits_first() -> None:  # interleave: B runs entirely inside A's commit
        if not raced:
            raced.append("B")
            _handler(store)(event.resent(), data)

    with pytest.raises(Duplicate):
        _handler(store, the_other_consumer_commits_first)(event, data)
    stored = store.rides[ride.ride_id]
    assert raced == ["B"] and (stored.status, stored.version) == (RideStatus.CAR_ASSIGNED, 2)
    snapshots = [
        o.event.sequence for o in store.outbox[outbox_before:] if o.event.type.endswith("RideUpdated")
    ]
    assert snapshots == [2]  # one change, one snapshot
    assert store.markers == {event.dedup_key}


def test_a_later_change_publishes_only_its_own_events() -> None:
    """The memory adapter stores rides without their already-published domain events."""
    store = RideStore()
    ride = _book(store)
    before = len(store.outbox)
    _handler(store)(*_assigned(ride.ride_id))
    assert [o.event.type for o in store.outbox[before:]] == ["acme.acr.ride.RideUpdated"]
