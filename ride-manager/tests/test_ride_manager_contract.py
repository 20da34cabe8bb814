"""The ride-manager ports' contract, run against the in-memory fakes AND the DynamoDB adapters (in-process
moto): what the use cases and consumers rely on — conditions, labels, paging, markers, events recorded
only on commit — holds for both."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from ride_manager_fakes import (
    MemoryHistoryUnitOfWork,
    MemoryRideHistory,
    MemoryRideUnitOfWork,
    RideStore,
    StaticDispatch,
)

from acr import catalog, clock, dynamo, trace_export, tracing
from acr.catalog.base import Place
from acr.catalog.fleet import CarAssigned
from acr.catalog.ride import CancellationReason, RideUpdated
from acr.consumer import Stale
from acr.envelope import CloudEvent
from acr.money import Money
from acr.projection_store import DynamoPointers
from acr.projections import Projection, copy_name
from acr.runtime import Messaging
from acr.service import Runtime
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import archive_copies, empty_tables, in_process_messaging, outbox_events, published
from acr_testkit.identity import settings_for, signed
from ride_manager.adapters.dynamo import DynamoHistoryUnitOfWork, DynamoRideHistory, DynamoRideUnitOfWork
from ride_manager.api import RideManager
from ride_manager.bootstrap import SERVICE, assemble, aws_adapters
from ride_manager.domain import Deadlines, Quote, Ride
from ride_manager.handlers import Nudge, on_deadline, save
from ride_manager.ports import HistoryUnitOfWork, IdempotencyRecord, RideHistory, UnitOfWork
from ride_manager.snapshot import ride_to_json
from ride_manager.topology import PROJECTIONS, RIDE_HISTORY, RIDES, TOPOLOGY

A = Place(label="1 Harbour Street, 00100", lat=60.16, lon=24.93, address_id="A1")
B = Place(label="9 Station Road, 00130", lat=60.18, lon=24.96)
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)  # milliseconds: what the stores keep


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    history_unit_of_work: Callable[[], HistoryUnitOfWork]
    history: RideHistory
    published: Callable[[], list[str]]


@pytest.fixture(scope="module")
def aws() -> Iterator[Messaging]:
    """One in-process moto for the module (setting it up is the slow part); each case empties the tables."""
    with in_process_messaging(TOPOLOGY) as messaging:
        yield messaging


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        store = RideStore()
        return Backend(
            lambda: MemoryRideUnitOfWork(store),
            lambda: MemoryHistoryUnitOfWork(store),
            MemoryRideHistory(store),
            lambda: [catalog.CATALOG[o.event.type].name for o in store.outbox],
        )
    messaging: Messaging = request.getfixturevalue("aws")
    empty_tables(messaging.dynamodb, TOPOLOGY.all_tables())
    return Backend(
        lambda: DynamoRideUnitOfWork(messaging.unit_of_work()),
        lambda: DynamoHistoryUnitOfWork(messaging.unit_of_work(marked=False), (RIDE_HISTORY,)),
        DynamoRideHistory(
            messaging.dynamodb, Projection("ride-history", DynamoPointers(messaging.dynamodb, PROJECTIONS))
        ),
        lambda: published(messaging),
    )


def quote(quote_id: str = "qte_1", rider_id: str = "rdr_1") -> Quote:
    return Quote(quote_id, rider_id, A, B, 90.0, 600.0, 5000.0, Decimal("10.00"), at(300))


def ride(ride_id: str = "ride_1", rider_id: str = "rdr_1", requested: float = 0) -> Ride:
    new = Ride.request(ride_id, quote(rider_id=rider_id), at(requested))
    new.pull_events()
    return new


def add(backend: Backend, *rides: Ride) -> None:
    uow = backend.unit_of_work()
    for each in rides:
        uow.rides.add(each)
    uow.commit()


# --- rides ---------------------------------------------------------------------------------------------
def test_a_ride_is_added_once_then_saved_only_over_its_version(backend: Backend) -> None:
    add(backend, ride())
    assert backend.unit_of_work().rides.get("ride_1") == ride()
    assert backend.unit_of_work().rides.get("ride_2") is None
    again = backend.unit_of_work()
    again.rides.add(ride())
    with pytest.raises(Conflict) as conflict:
        again.commit()
    assert conflict.value.labels == ["ride", "ride-version"]

    moved = backend.unit_of_work().rides.get("ride_1")
    assert moved is not None and moved.assign_car("car-1", 80, at(1))
    first = backend.unit_of_work()
    first.rides.save(moved, 1)
    first.commit()
    late = ride()
    late.assign_car("car-2", 70, at(2))  # also version 2, over version 1 that is gone
    second = backend.unit_of_work()
    second.rides.save(late, 1)
    with pytest.raises(Conflict) as conflict:
        second.commit()
    assert conflict.value.labels == ["ride", "ride-version"]
    assert backend.unit_of_work().rides.get("ride_1") == moved


def test_every_version_of_a_ride_is_kept_in_its_public_shape(backend: Backend) -> None:
    booked = ride()
    add(backend, booked)
    moved = ride()
    moved.assign_car("car-1", 80, at(1))
    uow = backend.unit_of_work()
    uow.rides.save(moved, 1)
    uow.commit()
    assert backend.history.versions("ride_1", 0) == [ride_to_json(booked), ride_to_json(moved)]
    assert backend.history.versions("ride_1", 1) == [ride_to_json(moved)]
    assert backend.history.versions("ride_1", 2) == [] and backend.history.versions("ride_x", 0) == []


def test_what_a_ride_went_through_survives_the_store(backend: Backend) -> None:
    cancelled = ride("ride_1")
    cancelled.assign_car("car-1", 80, at(1))
    cancelled.car_arrived("car-1", at(2))
    cancelled.cancel(CancellationReason.RIDER_CANCELLED, at(3))
    cancelled.payment_settled(False, "pay_1", Money.of("5"), at(4), sequence=1)
    paid = ride("ride_2")
    paid.assign_car("car-1", 80, at(1))
    paid.car_arrived("car-1", at(2))
    paid.trip_started("car-1", at(3))
    paid.complete("car-1", 4000, 500, at(4))
    paid.payment_settled(True, "ch_2", Money.of("8.98"), at(5))
    paid.points_recorded(8, at(6))
    stalled = ride("ride_3")
    stalled.assign_car("car-1", 80, at(1))
    stalled.car_arrived("car-1", at(2))
    stalled.trip_started("car-1", at(3))
    stalled.car_stalled("car-1")
    stalled.deadline = at(90)
    add(backend, cancelled, paid, stalled)
    assert backend.unit_of_work().rides.get("ride_1") == cancelled
    assert backend.unit_of_work().rides.get("ride_2") == paid
    again = backend.unit_of_work().rides.get("ride_3")
    assert again == stalled and again.stalled and again.deadline == at(90)
    assert (cancelled.payment and cancelled.payment.sequence) == 1


# --- quotes and idempotency keys -----------------------------------------------------------------------
def test_a_quote_is_added_once_and_books_at_most_one_ride(backend: Backend) -> None:
    uow = backend.unit_of_work()
    uow.quotes.add(quote())
    uow.commit()
    assert backend.unit_of_work().quotes.get("qte_1") == quote()
    assert backend.unit_of_work().quotes.get("qte_x") is None
    twice = backend.unit_of_work()
    twice.quotes.add(quote())
    with pytest.raises(Conflict) as conflict:
        twice.commit()
    assert conflict.value.labels == ["quote"]

    used = backend.unit_of_work()
    used.quotes.mark_used(quote(), "ride_1")
    used.commit()
    assert backend.unit_of_work().quotes.get("qte_1") == Quote(**{**quote().__dict__, "ride_id": "ride_1"})
    for quote_id in ("qte_1", "qte_unknown"):
        again = backend.unit_of_work()
        again.quotes.mark_used(quote(quote_id), "ride_2")
        with pytest.raises(Conflict) as conflict:
            again.commit()
        assert conflict.value.labels == ["quote"]
    assert (backend.unit_of_work().quotes.get("qte_1") or quote()).ride_id == "ride_1"


def test_an_idempotency_key_is_claimed_once_until_it_expires(backend: Backend) -> None:
    record = IdempotencyRecord("rdr_1", "k1", "h1", "ride_1")
    uow = backend.unit_of_work()
    uow.keys.claim(record, 60)
    uow.commit()
    assert backend.unit_of_work().keys.get("rdr_1", "k1") == record
    assert backend.unit_of_work().keys.get("rdr_2", "k1") is None  # keys belong to their rider
    racing = backend.unit_of_work()
    racing.keys.claim(IdempotencyRecord("rdr_1", "k1", "h1", "ride_2"), 60)
    with pytest.raises(Conflict) as conflict:
        racing.commit()
    assert conflict.value.labels == ["idempotency"]

    old = backend.unit_of_work()
    old.keys.claim(IdempotencyRecord("rdr_1", "k2", "h1", "ride_3"), -5)  # already expired
    old.commit()
    assert backend.unit_of_work().keys.get("rdr_1", "k2") is None
    renewed = IdempotencyRecord("rdr_1", "k2", "h2", "ride_4")
    new = backend.unit_of_work()
    new.keys.claim(renewed, 60)
    new.commit()
    assert backend.unit_of_work().keys.get("rdr_1", "k2") == renewed


def test_a_rider_holds_at_most_the_cap_of_rides_and_a_release_frees_a_slot(backend: Backend) -> None:
    for ride_id in ("ride_1", "ride_2"):
        uow = backend.unit_of_work()
        uow.active_rides.hold("rdr_1", ride_id, 2)
        uow.commit()
    assert backend.unit_of_work().active_rides.count("rdr_1") == 2
    assert backend.unit_of_work().active_rides.count("rdr_2") == 0  # holds belong to their rider
    over = backend.unit_of_work()
    over.active_rides.hold("rdr_1", "ride_3", 2)
    with pytest.raises(Conflict) as conflict:
        over.commit()
    assert conflict.value.labels == ["active-rides"]
    for _ in range(2):  # a release repeated (a retried commit, a later save of the ended ride) is a no-op
        uow = backend.unit_of_work()
        uow.active_rides.release("rdr_1", "ride_1")
        uow.commit()
    assert backend.unit_of_work().active_rides.count("rdr_1") == 1
    freed = backend.unit_of_work()
    freed.active_rides.hold("rdr_1", "ride_3", 2)
    freed.commit()
    assert backend.unit_of_work().active_rides.count("rdr_1") == 2
    assert [r["rideId"] for r in backend.history.active()] == []  # the holds are no rides
    assert backend.unit_of_work().rides.get("rider#rdr_1") is None


# --- the ride history read model -----------------------------------------------------------------------
def snapshot(
    version: int, ride_id: str = "ride_1", rider_id: str = "rdr_1", requested: float = 0
) -> RideUpdated:
    doc = {
        "rideId": ride_id,
        "requestedAt": clock.iso(at(requested)),
        "status": "REQUESTED",
        "version": version,
    }
    return RideUpdated(ride_id=ride_id, rider_id=rider_id, version=version, ride=doc)


def snapshot_of(ride: Ride) -> RideUpdated:
    """The snapshot ride-manager publishes of ``ride`` as it is now."""
    return RideUpdated(
        ride_id=ride.ride_id, rider_id=ride.rider_id, version=ride.version, ride=ride_to_json(ride)
    )


def project(backend: Backend, *snapshots: RideUpdated) -> None:
    for each in snapshots:
        uow = backend.history_unit_of_work()
        uow.history.put_if_newer(each, each.version)
        uow.commit()


def test_a_snapshot_is_stored_only_over_an_older_one(backend: Backend) -> None:
    project(backend, snapshot(1), snapshot(3))
    for version in (3, 2, 1):
        with pytest.raises(Stale):
            backend.history_unit_of_work().history.put_if_newer(snapshot(version), version)
    assert backend.history.rides_of("rdr_1", 10, None) == ([snapshot(3).ride], None)

    slow = backend.history_unit_of_work()
    slow.history.put_if_newer(snapshot(4), 4)
    project(backend, snapshot(5))  # another consumer stores a newer one meanwhile
    with pytest.raises(Conflict) as conflict:
        slow.commit()
    assert conflict.value.labels == ["history"]
    with pytest.raises(Stale):  # what the kernel's second run finds
        backend.history_unit_of_work().history.put_if_newer(snapshot(4), 4)
    assert backend.history.rides_of("rdr_1", 10, None) == ([snapshot(5).ride], None)


def test_the_history_unit_of_work_keeps_no_markers(backend: Backend) -> None:
    event = catalog.record(snapshot(1), subject="ride_1", sequence=1)
    for version, delivery in ((1, event), (2, event.resent())):
        uow = backend.history_unit_of_work()
        uow.history.put_if_newer(snapshot(version), version)
        uow.mark_consumed(delivery)
        uow.commit()  # no Duplicate: the version alone makes it idempotent
    assert backend.history.rides_of("rdr_1", 10, None)[0] == [snapshot(2).ride]


def test_a_riders_rides_come_newest_first_page_by_page(backend: Backend) -> None:
    project(backend, *(snapshot(1, f"ride_{n}", requested=n) for n in range(5)))
    project(backend, snapshot(1, "ride_other", rider_id="rdr_2", requested=9))
    pages: list[list[object]] = []
    cursor: str | None = None
    while True:
        rides, cursor = backend.history.rides_of("rdr_1", 2, cursor)
        pages.append([r["rideId"] for r in rides])
        if cursor is None:
            break
    assert pages == [["ride_4", "ride_3"], ["ride_2", "ride_1"], ["ride_0"]]


@pytest.mark.parametrize(
    "forged",
    ["0", "[]", '{"riderId": {"S": "rdr_1"}}', "not-json", "rdr_1:x", "[" * 2000],  # nested too deep
)
def test_a_cursor_is_refused_unless_this_store_made_it_for_that_rider(backend: Backend, forged: str) -> None:
    project(backend, *(snapshot(1, f"ride_{n}", requested=n) for n in range(3)))
    _, cursor = backend.history.rides_of("rdr_1", 2, None)
    assert cursor is not None and backend.history.rides_of("rdr_1", 2, cursor)[0]
    for refused in (forged, cursor):
        with pytest.raises(ValueError):
            backend.history.rides_of("rdr_2" if refused == cursor else "rdr_1", 2, refused)


def test_active_rides_and_the_deadline_index_soonest_first(backend: Backend) -> None:
    waiting = [ride(f"ride_{n}", requested=n) for n in (3, 1, 2)]
    for each in waiting:
        each.deadline = each.requested_at + timedelta(seconds=30)
    assigned = ride("ride_assigned", requested=0)
    assigned.assign_car("car-1", 80, at(5))
    assigned.deadline = at(20)
    cancelled = ride("ride_cancelled", requested=0)
    cancelled.cancel(CancellationReason.RIDER_CANCELLED, at(5))
    add(backend, *waiting, assigned, cancelled)
    assert backend.history.deadlines(10) == [
        ("ride_assigned", at(20)),
        ("ride_1", at(31)),
        ("ride_2", at(32)),
        ("ride_3", at(33)),
    ]
    assert backend.history.deadlines(2) == [("ride_assigned", at(20)), ("ride_1", at(31))]
    assert backend.history.active() == []  # the rides in flight are a read model: no snapshot yet
    project(backend, *(snapshot_of(r) for r in (*waiting, assigned, cancelled)))
    assert [r["rideId"] for r in backend.history.active()] == ["ride_3", "ride_2", "ride_1", "ride_assigned"]

    ended = backend.unit_of_work()
    gone = backend.unit_of_work().rides.get("ride_assigned")
    assert gone is not None
    gone.cancel(CancellationReason.CAR_NOT_ARRIVED, at(21))
    gone.deadline = None
    ended.rides.save(gone, 2)
    ended.commit()
    assert [ride_id for ride_id, _ in backend.history.deadlines(10)] == ["ride_1", "ride_2", "ride_3"]
    project(backend, snapshot_of(gone))
    assert [r["rideId"] for r in backend.history.active()] == ["ride_3", "ride_2", "ride_1"]


def test_touch_moves_a_deadline_and_records_a_stall_without_a_new_version(backend: Backend) -> None:
    booked = ride("ride_1")
    booked.deadline = at(30)
    add(backend, booked, ride("ride_2"))
    later = backend.unit_of_work().rides.get("ride_1")
    assert later is not None and later.deadline == at(30)
    later.deadline, later.stalled_car_id = at(60), "car-9"
    uow = backend.unit_of_work()
    uow.rides.touch(later)
    uow.commit()
    stored = backend.unit_of_work().rides.get("ride_1")
    assert stored == later and stored.version == 1
    assert backend.history.deadlines(10) == [("ride_1", at(60))]  # ride_2 has no deadline: not indexed
    assert [v["version"] for v in backend.history.versions("ride_1", 0)] == [1]  # no new version
    assert "deadlineAt" not in backend.history.versions("ride_1", 0)[0]  # the public shape only

    moved = backend.unit_of_work().rides.get("ride_1")
    assert moved is not None and moved.assign_car("car-1", 80, at(61), sequence=1)  # its sequence is stored
    first = backend.unit_of_work()
    first.rides.save(moved, 1)
    first.commit()
    late = backend.unit_of_work()
    late.rides.touch(later)  # read at version 1, which is gone
    with pytest.raises(Conflict) as conflict:
        late.commit()
    assert conflict.value.labels == ["ride"]
    assert backend.unit_of_work().rides.get("ride_1") == moved and moved.car_sequence == 1
    assert "carSequence" not in backend.history.versions("ride_1", 0)[-1]  # private, like the deadline


# --- the unit of work ----------------------------------------------------------------------------------
def test_events_go_out_only_on_commit_and_a_marker_makes_a_second_delivery_a_duplicate(
    backend: Backend,
) -> None:
    assigned = CarAssigned(
        ride_id="ride_1",
        car_id="car-1",
        car_lat=60.1,
        car_lon=24.9,
        pickup=A,
        dropoff=B,
        pickup_eta_seconds=80,
        assigned_at=at(1),
    )
    event = catalog.record(assigned, subject="ride_1")
    booked = Ride.request("ride_1", quote(), at(0))
    first = backend.unit_of_work()
    save(first, booked, None, Deadlines())
    first.mark_consumed(event)
    done: list[str] = []
    first.after_commit(lambda: done.append("after"))
    assert backend.published() == [] and done == []
    first.commit()
    assert sorted(backend.published()) == ["RideRequested", "RideUpdated"] and done == ["after"]

    second = backend.unit_of_work()
    second.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        second.commit()


def test_a_failed_commit_writes_and_publishes_nothing(backend: Backend) -> None:
    add(backend, ride())
    before = backend.published()
    uow = backend.unit_of_work()
    uow.quotes.add(quote("qte_2"))
    save(uow, Ride.request("ride_1", quote(), at(0)), None, Deadlines())  # the ride exists already
    with pytest.raises(Conflict):
        uow.commit()
    assert backend.published() == before and backend.unit_of_work().quotes.get("qte_2") is None


# --- the ride's trace ----------------------------------------------------------------------------------
def test_the_watchdog_of_a_fresh_process_continues_the_trace_stored_on_the_ride(
    aws: Messaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ride row keeps the context of the span that wrote it: a restarted process (or another replica),
    which never saw the ride, ends it in that trace."""
    trace_export.configure(SERVICE)
    empty_tables(aws.dynamodb, TOPOLOGY.all_tables())
    stuck = ride("ride_1")
    stuck.deadline = at(30)  # long past
    uow = DynamoRideUnitOfWork(aws.unit_of_work())
    with trace.get_tracer("tests").start_as_current_span("booking") as booking:
        uow.rides.add(stuck)
        uow.commit()
    trace_id = format(booking.get_span_context().trace_id, "032x")
    monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())  # a fresh process

    nudge = on_deadline(
        "ride_1",
        uow_factory=lambda: DynamoRideUnitOfWork(aws.unit_of_work()),
        rules=Deadlines(),
        dispatch=StaticDispatch(),
    )
    assert nudge is Nudge.ENDED
    events = outbox_events(aws)
    assert {catalog.CATALOG[e.type].name for e in events} >= {"RideCancelled", "RideUpdated"}
    assert {tracing.trace_id(e.traceparent) for e in events} == {trace_id}
    row = dynamo.get(aws.dynamodb, RIDES, {"rideId": "ride_1"})
    assert row is not None and tracing.trace_id(row["traceparent"]) == trace_id  # and it stays stored


# --- the production wiring -----------------------------------------------------------------------------
def test_the_service_consumes_its_ride_history_queue(aws: Messaging) -> None:
    """Wired for AWS (on the module's moto), the app's loops consume the history FIFO queue, and what the
    queue receives is listed by ``GET /v1/rides``."""
    runtimes: list[Runtime] = []

    def wire(runtime: Runtime) -> RideManager:
        runtimes.append(runtime)
        return assemble(runtime, aws_adapters(runtime))

    settings = settings_for("ride-manager", aws_endpoint_url="", sqs_wait_s=1)
    empty_tables(aws.dynamodb, TOPOLOGY.all_tables())
    with signed(
        TestClient(SERVICE.app(settings=settings, wire=wire)), "bff", "ride-manager", "rdr_1"
    ) as client:
        assert {"acr-ride-manager-events", "acr-ride-manager-history.fifo", "watchdog"} <= set(
            runtimes[0].loops.names
        )
        event = catalog.record(snapshot(1), subject="ride_1", sequence=1)
        aws.sqs.send_message(
            QueueUrl=aws.queue_url(TOPOLOGY.queue("history", fifo=True)),
            MessageBody=event.to_json(),
            MessageGroupId="ride_1",
            MessageDeduplicationId=event.id,
        )
        deadline, rides = time.monotonic() + 15, []
        while not rides and time.monotonic() < deadline:
            time.sleep(0.1)
            rides = client.get("/v1/rides").json()["rides"]
        assert rides == [snapshot(1).ride]
        missing = client.get("/v1/rides/ride_x")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ride_not_found")


def test_each_ride_snapshot_is_also_recorded_for_the_ride_bus_archive(aws: Messaging) -> None:
    """The history is rebuilt from the acr-ride archive: every RideUpdated has a copy for that bus, under
    an id of its own, with the same version."""
    empty_tables(aws.dynamodb, TOPOLOGY.all_tables())
    uow = DynamoRideUnitOfWork(aws.unit_of_work())
    save(uow, Ride.request("ride_1", quote(), at(0)), None, Deadlines())
    uow.commit()
    assert archive_copies(aws) == [("RideUpdated", "bus:acr-ride")]
    rows = [dynamo.from_item(i) for i in aws.dynamodb.scan(TableName=TOPOLOGY.outbox_table)["Items"]]
    snapshots = [CloudEvent.from_json(r["event"]) for r in rows if r["type"].endswith(".RideUpdated")]
    assert len({e.id for e in snapshots}) == 2 and {e.sequence for e in snapshots} == {1}


def test_history_writes_go_to_every_copy_named_and_only_newer_versions(aws: Messaging) -> None:
    """During a rebuild a live snapshot goes to both copies; a copy that already has it is skipped, and
    with no copy to write (no rebuild running) a replayed snapshot changes nothing."""
    empty_tables(aws.dynamodb, TOPOLOGY.all_tables())
    fresh = copy_name(RIDE_HISTORY, 7)
    aws.dynamodb.create_table(
        **(next(t for t in TOPOLOGY.tables if t.name == RIDE_HISTORY).definition() | {"TableName": fresh})
    )
    snapshot = RideUpdated(
        ride_id="ride_1",
        rider_id="rdr_1",
        version=2,
        ride={"requestedAt": "t", "rideId": "ride_1", "status": "PAID"},
    )
    only_fresh = DynamoHistoryUnitOfWork(aws.unit_of_work(marked=False), (fresh,))
    only_fresh.history.put_if_newer(snapshot, snapshot.version)
    only_fresh.commit()
    both = DynamoHistoryUnitOfWork(aws.unit_of_work(marked=False), (RIDE_HISTORY, fresh))
    both.history.put_if_newer(snapshot, snapshot.version)  # newer in the declared copy only
    both.commit()
    with pytest.raises(Stale):
        DynamoHistoryUnitOfWork(aws.unit_of_work(marked=False), (RIDE_HISTORY, fresh)).history.put_if_newer(
            snapshot, snapshot.version
        )
    none = DynamoHistoryUnitOfWork(aws.unit_of_work(marked=False), ())
    none.history.put_if_newer(snapshot, snapshot.version)
    none.commit()
    for table in (RIDE_HISTORY, fresh):
        assert [dynamo.from_item(i)["version"] for i in aws.dynamodb.scan(TableName=table)["Items"]] == [2]
    aws.dynamodb.delete_table(TableName=fresh)
