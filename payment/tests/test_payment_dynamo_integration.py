"""The payment consumer and its DynamoDB adapters against an emulator process (moto server, or LocalStack
when Docker answers): the whole path through a real transaction, and one capture per key under concurrent
replays (conditional puts racing on a server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from acr import aws, catalog
from acr.catalog.ride import RideCompleted
from acr.consumer import Stale, idempotent
from acr.envelope import CloudEvent
from acr.loops import Loops
from acr.money import Money
from acr.runtime import Messaging
from acr.settings import Settings
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr.unit_of_work import Conflict, Duplicate
from acr_testkit.emulator import aws_emulator
from payment.adapters.dynamo import DynamoLedger, DynamoPaymentUnitOfWork
from payment.adapters.gateway import SimulatedGateway
from payment.domain import ChargeRetryPolicy, PaymentStatus
from payment.handlers import Charger, get_payment, handlers
from payment.reconciler import Reconciler
from payment.topology import TOPOLOGY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def messaging() -> Iterator[Messaging]:
    with aws_emulator() as url:
        settings = Settings(aws_endpoint_url=url, sqs_wait_s=1)
        apply(discover(), Clients(lambda name: aws.client(name, settings)))
        yield Messaging(TOPOLOGY, settings, Loops())


def _completed(ride_id: str) -> tuple[CloudEvent, RideCompleted]:
    data = RideCompleted(
        ride_id=ride_id,
        rider_id="rdr_1",
        car_id="car-1",
        fare=Money.of("17.80"),
        distance_meters=1000,
        duration_seconds=300,
        completed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return catalog.record(data, subject=ride_id, sequence=5), data


def test_payment_record_outbox_and_marker_commit_together_and_capture_once(messaging: Messaging) -> None:
    ledger = DynamoLedger(messaging.dynamodb)
    gateway = SimulatedGateway(ledger, "timeout", timeout_s=0, sleep=lambda s: None)
    charger = Charger(gateway, ChargeRetryPolicy(3, 0.0), sleep=lambda s: None)

    def unit_of_work() -> DynamoPaymentUnitOfWork:
        return DynamoPaymentUnitOfWork(messaging.unit_of_work())

    handle = idempotent(unit_of_work, handlers(charger=charger))

    event, data = _completed("ride_it_pay_1")
    handle(event, data)
    with pytest.raises((Duplicate, Stale)):  # the ride version charged is on the row
        handle(event.resent(), data)
    unknown = get_payment(unit_of_work(), "ride_it_pay_1")
    assert (unknown.status, unknown.attempts) == (PaymentStatus.UNKNOWN, 3)
    assert len(ledger.list("ride_it_pay_1", 500)) == 1  # captured before the timeouts, once
    assert messaging.events_about("ride_it_pay_1") == []
    reconciler = Reconciler(unit_of_work=unit_of_work, charger=charger, pace_s=1)
    assert _awaiting(unit_of_work, "ride_it_pay_1") and reconciler.tick() == 0

    gateway.set_mode("ok")
    assert reconciler.tick() == 1
    paid = get_payment(unit_of_work(), "ride_it_pay_1")
    assert (paid.status, paid.version, paid.sequence) == (PaymentStatus.SUCCEEDED, 3, 1)
    assert not _awaiting(unit_of_work, "ride_it_pay_1")
    [charge] = ledger.list("ride_it_pay_1", 500)
    assert charge.charge_id == paid.payment_id
    told = messaging.events_about("ride_it_pay_1")
    assert [(str(e["type"]).rsplit(".", 1)[1], e["sequence"]) for e in told] == [("PaymentSucceeded", 1)]

    # a stale writer (version 1) loses on the version condition
    uow = DynamoPaymentUnitOfWork(messaging.unit_of_work())
    uow.payments.update(unknown, unknown)
    with pytest.raises(Conflict) as conflict:
        uow.commit()
    assert conflict.value.labels == ["payment"]


def _awaiting(unit_of_work: Callable[[], DynamoPaymentUnitOfWork], ride_id: str) -> bool:
    return ride_id in unit_of_work().payments.awaiting_outcome(100)


def test_concurrent_captures_with_one_key_keep_one_ledger_row(messaging: Messaging) -> None:
    ledger = DynamoLedger(messaging.dynamodb)
    gateway = SimulatedGateway(ledger)
    with ThreadPoolExecutor(8) as pool:
        charges = list(
            pool.map(lambda _: gateway.capture("ride_it_pay_2", "ride_it_pay_2", Money.of(5)), range(8))
        )
    assert len({c.charge_id for c in charges}) == 1 and len({c.at for c in charges}) == 1
    assert len(ledger.list("ride_it_pay_2", 500)) == 1
    assert {c.ride_id for c in ledger.list(None, 500)} >= {"ride_it_pay_1", "ride_it_pay_2"}
