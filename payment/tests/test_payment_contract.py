"""The payment ports' contract, run against the in-memory fakes AND the DynamoDB adapters (in-process moto):
what the consumer, the operator retry and the gateway rely on — conditions, markers, the first ledger row,
events recorded only on commit — holds for both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from payment_fakes import MemoryLedger, MemoryPaymentUnitOfWork, PaymentStore

from acr import catalog, trace_export, tracing
from acr.catalog.payment import PaymentPurpose
from acr.catalog.ride import RideCompleted
from acr.money import Money
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.aws import in_process_messaging, outbox_events, published
from payment.adapters.dynamo import DynamoLedger, DynamoPaymentUnitOfWork
from payment.adapters.gateway import SimulatedGateway
from payment.domain import Charge, ChargeOutcome, ChargeRetryPolicy, Payment, charge_id_for
from payment.handlers import Charger
from payment.ports import Ledger, UnitOfWork
from payment.reconciler import Reconciler
from payment.topology import TOPOLOGY

AT = datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)  # stores keep milliseconds
FARE = Money.of("17.80")


@dataclass
class Backend:
    unit_of_work: Callable[[], UnitOfWork]
    ledger: Ledger
    published: Callable[[], list[str]]


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        store = PaymentStore()
        yield Backend(
            lambda: MemoryPaymentUnitOfWork(store),
            MemoryLedger(),
            lambda: [catalog.CATALOG[o.event.type].name for o in store.outbox],
        )
        return
    with in_process_messaging(TOPOLOGY) as messaging:
        yield Backend(
            lambda: DynamoPaymentUnitOfWork(messaging.unit_of_work()),
            DynamoLedger(messaging.dynamodb),
            lambda: published(messaging),
        )


def _failed(ride_id: str = "ride_1") -> Payment:
    outcome = ChargeOutcome.declined(1, "card declined by the issuer")
    return Payment.settle(ride_id, "rdr_1", PaymentPurpose.FARE, FARE, outcome, AT)


def _unknown(ride_id: str, at: datetime = AT) -> Payment:
    outcome = ChargeOutcome.unknown(3, "the gateway did not answer within 1 s")
    return Payment.settle(ride_id, "rdr_1", PaymentPurpose.FARE, FARE, outcome, at)


def _capture(ride_id: str, at: datetime = AT, amount: Money = FARE) -> Charge:
    return Charge(charge_id_for(ride_id), ride_id, "capture", amount, at, ride_id)


def test_a_payment_is_added_once(backend: Backend) -> None:
    assert backend.unit_of_work().payments.get("ride_1") is None
    first = backend.unit_of_work()
    first.payments.add(_failed())
    first.commit()
    assert backend.unit_of_work().payments.get("ride_1") == _failed()

    again = backend.unit_of_work()
    again.payments.add(replace(_failed(), attempts=1))
    with pytest.raises(Conflict) as conflict:
        again.commit()
    assert conflict.value.labels == ["payment"]
    assert backend.unit_of_work().payments.get("ride_1") == _failed()


def test_a_payment_is_updated_only_from_its_version(backend: Backend) -> None:
    uow = backend.unit_of_work()
    uow.payments.add(_failed())
    uow.commit()
    before = _failed()
    after = before.retried(ChargeOutcome.captured(1, _capture("ride_1")), AT + timedelta(seconds=5))
    update = backend.unit_of_work()
    update.payments.update(before, after)
    update.commit()
    assert backend.unit_of_work().payments.get("ride_1") == after

    stale = backend.unit_of_work()
    stale.payments.update(before, replace(before, version=2, reason="stale"))  # still thinks version 1
    with pytest.raises(Conflict) as conflict:
        stale.commit()
    assert conflict.value.labels == ["payment"]
    missing = backend.unit_of_work()
    missing.payments.update(_failed("ride_none"), replace(_failed("ride_none"), version=2))
    with pytest.raises(Conflict):
        missing.commit()
    assert backend.unit_of_work().payments.get("ride_1") == after
    assert backend.unit_of_work().payments.get("ride_none") is None


def test_the_payments_awaiting_their_outcome_are_listed_least_recently_updated_first(
    backend: Backend,
) -> None:
    uow = backend.unit_of_work()
    for ride_id, seconds in (("ride_3", 2), ("ride_1", 0), ("ride_2", 1)):
        uow.payments.add(_unknown(ride_id, AT + timedelta(seconds=seconds)))
    uow.payments.add(_failed("ride_failed"))
    uow.commit()
    assert backend.unit_of_work().payments.awaiting_outcome(10) == ["ride_1", "ride_2", "ride_3"]
    assert backend.unit_of_work().payments.awaiting_outcome(2) == ["ride_1", "ride_2"]

    stored = backend.unit_of_work().payments.get("ride_1")
    assert stored == _unknown("ride_1") and stored.sequence == 0
    tried = stored.reconciled(ChargeOutcome.unknown(1, "no answer"), AT + timedelta(seconds=9))
    paid = _unknown("ride_2", AT + timedelta(seconds=1)).reconciled(
        ChargeOutcome.captured(1, _capture("ride_2")), AT + timedelta(seconds=10)
    )
    update = backend.unit_of_work()
    update.payments.update(stored, tried)
    update.payments.update(_unknown("ride_2", AT + timedelta(seconds=1)), paid)
    update.commit()
    assert backend.unit_of_work().payments.awaiting_outcome(10) == ["ride_3", "ride_1"]
    assert backend.unit_of_work().payments.get("ride_2") == paid and paid.sequence == 1


def test_the_ledger_keeps_the_first_row_of_a_charge(backend: Backend) -> None:
    first = backend.ledger.add(_capture("ride_1"))
    assert first == _capture("ride_1") == backend.ledger.find("ride_1", charge_id_for("ride_1"))
    replay = backend.ledger.add(_capture("ride_1", AT + timedelta(seconds=9), Money.of("99.00")))
    assert replay == first
    assert (
        backend.ledger.find("ride_1", "ch_other") is None
        and backend.ledger.find("ride_2", first.charge_id) is None
    )


def test_the_ledger_lists_a_rides_charges_or_all_newest_first(backend: Backend) -> None:
    for n, ride_id in enumerate(("ride_1", "ride_2", "ride_3")):
        backend.ledger.add(_capture(ride_id, AT + timedelta(seconds=n)))
    assert [c.ride_id for c in backend.ledger.list(None, 500)] == ["ride_3", "ride_2", "ride_1"]
    assert [c.ride_id for c in backend.ledger.list(None, 2)] == ["ride_3", "ride_2"]
    assert backend.ledger.list("ride_2", 500) == [_capture("ride_2", AT + timedelta(seconds=1))]
    assert backend.ledger.list("ride_9", 500) == []


def test_a_marker_makes_a_second_delivery_a_duplicate_and_events_go_out_on_commit(backend: Backend) -> None:
    completed = RideCompleted(
        ride_id="ride_1",
        rider_id="rdr_1",
        car_id="car-1",
        fare=FARE,
        distance_meters=1000,
        duration_seconds=300,
        completed_at=AT,
    )
    event = catalog.record(completed, subject="ride_1", sequence=5)
    first = backend.unit_of_work()
    first.payments.add(_failed())
    first.record(_failed().outcome(), subject="ride_1")
    first.mark_consumed(event)
    done: list[str] = []
    first.after_commit(lambda: done.append("after"))
    assert backend.published() == [] and done == []
    first.commit()
    assert backend.published() == ["PaymentFailed"] and done == ["after"]

    second = backend.unit_of_work()
    second.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        second.commit()


def test_a_failed_commit_writes_nothing(backend: Backend) -> None:
    uow = backend.unit_of_work()
    uow.payments.add(_failed())
    uow.commit()
    both = backend.unit_of_work()
    both.payments.add(_failed("ride_2"))
    both.payments.update(replace(_failed(), version=7), replace(_failed(), version=8))
    both.record(_failed("ride_2").outcome(), subject="ride_2")
    with pytest.raises(Conflict) as conflict:
        both.commit()
    assert conflict.value.labels == ["payment"]
    assert backend.unit_of_work().payments.get("ride_2") is None and backend.published() == []


# --- the ride's trace ----------------------------------------------------------------------------------
def test_the_reconciler_of_a_fresh_process_continues_the_trace_stored_on_the_payment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The payment row keeps the context of the consumer span that wrote it: a restarted process (or another
    replica) tells the reconciled outcome in the ride's trace."""
    trace_export.configure("payment")
    with in_process_messaging(TOPOLOGY) as messaging:

        def unit_of_work() -> DynamoPaymentUnitOfWork:
            return DynamoPaymentUnitOfWork(messaging.unit_of_work())

        with trace.get_tracer("tests").start_as_current_span("process RideCompleted") as consumer:
            uow = unit_of_work()
            uow.payments.add(_unknown("ride_1"))
            uow.commit()
        trace_id = format(consumer.get_span_context().trace_id, "032x")
        monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())  # a fresh process

        gateway = SimulatedGateway(DynamoLedger(messaging.dynamodb), sleep=lambda _s: None)
        charger = Charger(gateway, ChargeRetryPolicy(1, 0.0), sleep=lambda _s: None)
        assert Reconciler(unit_of_work=unit_of_work, charger=charger, pace_s=1).tick() == 1

        (told,) = outbox_events(messaging)
        assert catalog.CATALOG[told.type].name == "PaymentSucceeded"
        assert tracing.trace_id(told.traceparent) == trace_id
