"""The payment consumer and the operator retry against in-memory adapters, and the app wired with them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from payment_fakes import MemoryLedger, MemoryPaymentUnitOfWork, PaymentStore

from acr import catalog
from acr.catalog.ride import CancellationReason, RideCancelled, RideCompleted
from acr.consumer import idempotent
from acr.envelope import CloudEvent
from acr.money import Money
from acr.service import Runtime
from acr.unit_of_work import Duplicate
from acr_testkit.messaging import FakeMessaging
from payment.adapters.gateway import SimulatedGateway
from payment.api import PaymentState
from payment.bootstrap import SERVICE, Adapters, assemble
from payment.domain import ChargeRetryPolicy, GatewayMode, Payment, PaymentStatus
from payment.handlers import Charger, handlers, retry_payment

FARE = Money.of("23.40")
AT = datetime(2026, 1, 1, tzinfo=UTC)


class World:
    def __init__(self, mode: GatewayMode = "ok", capture_on_timeout: bool = True) -> None:
        self.store = PaymentStore()
        self.ledger = MemoryLedger()
        self.slept: list[float] = []
        self.gateway = SimulatedGateway(
            self.ledger, mode, capture_on_timeout=capture_on_timeout, sleep=lambda s: None
        )
        self.charger = Charger(
            self.gateway, ChargeRetryPolicy(max_attempts=3, base_delay_s=0.2), sleep=self.sleep
        )
        self.units: list[MemoryPaymentUnitOfWork] = []
        self.handle = idempotent(self.unit_of_work, handlers(charger=self.charger))
        self.on_sleep: list[Callable[[], None]] = []

    def unit_of_work(self) -> MemoryPaymentUnitOfWork:
        self.units.append(MemoryPaymentUnitOfWork(self.store))
        return self.units[-1]

    def retry(self, ride_id: str) -> Payment:
        return retry_payment(self.unit_of_work, ride_id, charger=self.charger)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        for action in self.on_sleep:
            action()

    def outbox(self) -> list[tuple[str, dict[str, object]]]:
        return [(o.event.type.rsplit(".", 1)[1], o.event.data) for o in self.store.outbox]

    def captures(self, ride_id: str) -> int:
        return len([c for c in self.ledger.rows.values() if c.ride_id == ride_id and c.type == "capture"])


def completed(ride_id: str = "ride_1", fare: Money = FARE) -> tuple[CloudEvent, RideCompleted]:
    data = RideCompleted(
        ride_id=ride_id,
        rider_id="rdr_1",
        car_id="car-1",
        fare=fare,
        distance_meters=1000,
        duration_seconds=300,
        completed_at=AT,
    )
    return catalog.record(data, subject=ride_id, sequence=5), data


def cancelled(ride_id: str = "ride_1", fee: Money | None = None) -> tuple[CloudEvent, RideCancelled]:
    data = RideCancelled(
        ride_id=ride_id,
        rider_id="rdr_1",
        car_id="car-1",
        reason=CancellationReason.RIDER_CANCELLED,
        fee=fee,
        cancelled_at=AT,
    )
    return catalog.record(data, subject=ride_id, sequence=4), data


def test_a_completed_ride_is_charged_once_even_when_redelivered() -> None:
    world = World()
    event, data = completed()
    world.handle(event, data)
    with pytest.raises(Duplicate):
        world.handle(event.resent(), data)
    assert world.captures("ride_1") == 1
    assert [u.commits for u in world.units] == [1, 0]  # one commit for the message, none for the copy
    [(kind, payload)] = world.outbox()
    assert (
        kind == "PaymentSucceeded" and payload["purpose"] == "FARE" and payload["amount"] == FARE.model_dump()
    )
    payment = world.store.payments["ride_1"]
    assert payload["paymentId"] == payment.payment_id == next(iter(world.ledger.rows.values())).charge_id
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)


def test_a_crash_after_the_capture_charges_nothing_more_on_redelivery() -> None:
    world = World()
    event, data = completed()
    crashing = idempotent(
        lambda: MemoryPaymentUnitOfWork(world.store, before_commit=_crash),
        handlers(charger=Charger(world.gateway, sleep=world.sleep)),
    )
    with pytest.raises(RuntimeError):
        crashing(event, data)
    assert world.captures("ride_1") == 1 and world.store.payments == {}
    world.handle(event.resent(), data)
    assert world.captures("ride_1") == 1 and [k for k, _ in world.outbox()] == ["PaymentSucceeded"]


def _crash() -> None:
    raise RuntimeError("process died before the commit")


def test_another_event_for_an_already_paid_ride_charges_nothing() -> None:
    world = World()
    world.handle(*completed())
    world.handle(*completed())  # a new event id for the same ride
    assert world.captures("ride_1") == 1 and len(world.outbox()) == 1


def test_a_decline_fails_at_once_without_retries() -> None:
    world = World("decline")
    world.handle(*completed())
    [(kind, payload)] = world.outbox()
    assert kind == "PaymentFailed" and payload["reason"] == "card declined by the issuer"
    assert world.slept == [] and world.captures("ride_1") == 0
    assert world.store.payments["ride_1"].attempts == 1


def test_transient_failures_are_retried_with_backoff_then_fail() -> None:
    world = World("timeout", capture_on_timeout=False)
    world.handle(*completed())
    assert world.slept == [0.2, 0.4]
    [(kind, payload)] = world.outbox()
    assert kind == "PaymentFailed" and "did not answer" in str(payload["reason"])
    assert world.store.payments["ride_1"].attempts == 3 and world.captures("ride_1") == 0


def test_a_timeout_after_a_capture_is_retried_with_the_same_key_and_captures_once() -> None:
    world = World("timeout", capture_on_timeout=True)
    world.on_sleep.append(lambda: world.gateway.set_mode("ok"))  # the gateway recovers before the 2nd try
    world.handle(*completed())
    assert world.slept == [0.2] and world.captures("ride_1") == 1
    [(kind, _)] = world.outbox()
    assert kind == "PaymentSucceeded" and world.store.payments["ride_1"].attempts == 2


def test_operator_retry_after_fixing_the_mode_succeeds_with_still_one_capture() -> None:
    world = World("timeout", capture_on_timeout=True)  # it captured, then never answered: PaymentFailed
    world.handle(*completed())
    assert [k for k, _ in world.outbox()] == ["PaymentFailed"] and world.captures("ride_1") == 1
    world.gateway.set_mode("ok")
    paid = world.retry("ride_1")
    assert paid.status == PaymentStatus.SUCCEEDED and paid.attempts == 4
    assert [k for k, _ in world.outbox()] == ["PaymentFailed", "PaymentSucceeded"]
    assert world.captures("ride_1") == 1


def test_a_cancellation_fee_is_charged_once_and_a_free_cancellation_not_at_all() -> None:
    world = World()
    free_event, free = cancelled("ride_free")
    world.handle(free_event, free)
    with pytest.raises(Duplicate):
        world.handle(free_event.resent(), free)
    fee_event, fee = cancelled("ride_fee", Money.of("5.00"))
    world.handle(fee_event, fee)
    with pytest.raises(Duplicate):
        world.handle(fee_event.resent(), fee)
    assert "ride_free" not in world.store.payments and world.captures("ride_free") == 0
    assert world.captures("ride_fee") == 1
    [(kind, payload)] = world.outbox()
    assert kind == "PaymentSucceeded" and payload["purpose"] == "CANCELLATION_FEE"


class Wired:
    """The app wired with in-memory adapters; ``before_commit`` actions run (once each) right before the
    next commit of a unit of work, as a competing writer would."""

    def __init__(self, mode: GatewayMode) -> None:
        self.store, self.ledger, self.messaging = PaymentStore(), MemoryLedger(), FakeMessaging()
        self.gateway = SimulatedGateway(self.ledger, mode, sleep=lambda s: None)
        self.before_commit: list[Callable[[], None]] = []

    def _run_before_commit(self) -> None:
        actions, self.before_commit = self.before_commit, []
        for action in actions:
            action()

    def unit_of_work(self) -> MemoryPaymentUnitOfWork:
        return MemoryPaymentUnitOfWork(self.store, self._run_before_commit)

    def wire(self, runtime: Runtime) -> PaymentState:
        return assemble(runtime, Adapters(self.messaging, self.unit_of_work, self.gateway))

    def client(self) -> TestClient:
        return TestClient(SERVICE.app(wire=self.wire))


def test_payment_http_api() -> None:
    wired = Wired("decline")
    with wired.client() as client:
        assert client.get("/v1/gateway").json() == {"mode": "decline"}
        bad = client.put("/v1/gateway", json={"mode": "broken"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")
        missing = client.post("/v1/payments/ride_1/retry")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "payment_not_found")
        assert client.get("/v1/payments/ride_1").status_code == 404

        wired.messaging.deliver("events", completed()[1], subject="ride_1")
        failed = client.get("/v1/payments/ride_1").json()
        assert (failed["status"], failed["purpose"], failed["attempts"]) == ("FAILED", "FARE", 1)
        assert failed["updatedAt"].endswith("Z")
        assert client.get("/v1/gateway/charges", params={"rideId": "ride_1"}).json() == {"charges": []}

        assert client.put("/v1/gateway", json={"mode": "ok"}).json() == {"mode": "ok"}
        paid = client.post("/v1/payments/ride_1/retry")
        assert paid.status_code == 200 and paid.json()["status"] == "SUCCEEDED"
        again = client.post("/v1/payments/ride_1/retry")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "not_retryable")
        [charge] = client.get("/v1/gateway/charges", params={"rideId": "ride_1"}).json()["charges"]
        assert charge["type"] == "capture" and charge["amount"] == {"amount": "23.40", "currency": "EUR"}
        assert charge["chargeId"] == paid.json()["paymentId"] and charge["at"].endswith("Z")
        assert len(client.get("/v1/gateway/charges").json()["charges"]) == 1
        assert [type(p).__name__ for p in wired.store.published()] == ["PaymentFailed", "PaymentSucceeded"]
        assert client.get("/healthz").json()["service"] == "payment"


def test_a_retry_that_loses_the_race_answers_409() -> None:
    wired = Wired("decline")
    with wired.client() as client:
        for ride_id in ("ride_1", "ride_2"):
            wired.messaging.deliver("events", completed(ride_id)[1], subject=ride_id)
        wired.gateway.set_mode("ok")

        # another operator's retry of ride_1 succeeds first: this one is not retryable any more
        wired.before_commit.append(lambda: client.post("/v1/payments/ride_1/retry"))
        lost = client.post("/v1/payments/ride_1/retry")
        assert (lost.status_code, lost.json()["error"]["code"]) == (409, "not_retryable")
        assert client.get("/v1/payments/ride_1").json()["status"] == "SUCCEEDED"

        # another writer changed ride_2's payment (still FAILED) first: a concurrent update
        def bump() -> None:
            current = wired.store.payments["ride_2"]
            wired.store.payments["ride_2"] = replace(current, version=current.version + 1)

        wired.before_commit.append(bump)
        raced = client.post("/v1/payments/ride_2/retry")
        assert (raced.status_code, raced.json()["error"]["code"]) == (409, "concurrent_update")
        assert client.get("/v1/payments/ride_2").json()["status"] == "FAILED"
        assert wired.ledger.list("ride_1", 10) and wired.ledger.list("ride_2", 10)  # one capture each
