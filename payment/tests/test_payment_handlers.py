"""The payment consumer and the operator retry against in-memory adapters, and the app wired with them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from payment_fakes import MemoryLedger, MemoryPaymentUnitOfWork, PaymentStore

from acr import catalog
from acr.catalog.ride import CancellationReason, RideCancelled, RideCompleted
from acr.consumer import Stale, idempotent
from acr.envelope import CloudEvent
from acr.faults import NO_FAULTS, Faults
from acr.money import Money
from acr.service import Runtime
from acr.settings import Settings
from acr.unit_of_work import Duplicate
from acr_testkit.identity import settings_for, signed
from acr_testkit.messaging import FakeMessaging
from payment.adapters.gateway import SimulatedGateway
from payment.api import PaymentState
from payment.bootstrap import SERVICE, Adapters, assemble
from payment.domain import ChargeRetryPolicy, GatewayMode, NotRetryable, Payment, PaymentStatus
from payment.handlers import Charger, handlers, reconcile_payment, retry_payment
from payment.reconciler import PAGE, Reconciler

FARE = Money.of("23.40")
AT = datetime(2026, 1, 1, tzinfo=UTC)


class World:
    def __init__(
        self, mode: GatewayMode = "ok", capture_on_timeout: bool = True, faults: Faults = NO_FAULTS
    ) -> None:
        self.store = PaymentStore()
        self.ledger = MemoryLedger()
        self.slept: list[float] = []
        self.gateway = SimulatedGateway(
            self.ledger, mode, capture_on_timeout=capture_on_timeout, sleep=lambda s: None, faults=faults
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

    def reconcile(self) -> int:
        """One round of the reconciler."""
        return Reconciler(unit_of_work=self.unit_of_work, charger=self.charger, pace_s=1).tick()

    def told(self) -> list[tuple[str, int | None]]:
        """The outcomes recorded, with their sequence."""
        return [(o.event.type.rsplit(".", 1)[1], o.event.sequence) for o in self.store.outbox]

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        for action in self.on_sleep:
            action()

    def outbox(self) -> list[tuple[str, dict[str, object]]]:
        return [(o.event.type.rsplit(".", 1)[1], o.event.data) for o in self.store.outbox]

    def captures(self, ride_id: str) -> int:
        return len([c for c in self.ledger.rows.values() if c.ride_id == ride_id and c.type == "capture"])


def completed(
    ride_id: str = "ride_1", fare: Money = FARE, sequence: int = 5
) -> tuple[CloudEvent, RideCompleted]:
    data = RideCompleted(
        ride_id=ride_id,
        rider_id="rdr_1",
        car_id="car-1",
        fare=fare,
        distance_meters=1000,
        duration_seconds=300,
        completed_at=AT,
    )
    return catalog.record(data, subject=ride_id, sequence=sequence), data


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
    with pytest.raises((Duplicate, Stale)):  # the copy finds the ride charged at its version
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


def test_another_event_for_an_already_paid_ride_charges_nothing_and_one_not_newer_is_stale() -> None:
    world = World()
    world.handle(*completed())
    assert world.store.payments["ride_1"].ride_sequence == 5  # the ride version that asked for it
    with pytest.raises(Stale):  # a new event id, the same ride version (a second relay, a resend)
        world.handle(*completed())
    with pytest.raises(Stale):
        world.handle(*completed(sequence=3))
    world.handle(*completed(sequence=7))  # newer, and payment hears only some versions: no wait...
    assert world.captures("ride_1") == 1 and len(world.outbox()) == 1  # ...but the ride is charged once


def test_a_decline_fails_at_once_without_retries() -> None:
    world = World("decline")
    world.handle(*completed())
    [(kind, payload)] = world.outbox()
    assert kind == "PaymentFailed" and payload["reason"] == "CARD_DECLINED"
    assert world.told() == [("PaymentFailed", 1)]
    assert world.slept == [] and world.captures("ride_1") == 0
    payment = world.store.payments["ride_1"]
    assert (payment.status, payment.attempts, payment.reason) == (
        PaymentStatus.FAILED,
        1,
        "card declined by the issuer",
    )
    assert world.reconcile() == 0 and world.told() == [("PaymentFailed", 1)]


def test_no_answer_is_tried_again_with_backoff_then_left_unknown_never_failed() -> None:
    world = World("timeout", capture_on_timeout=False)
    world.handle(*completed())
    assert world.slept == [0.2, 0.4] and world.outbox() == []
    payment = world.store.payments["ride_1"]
    assert (payment.status, payment.attempts, payment.sequence) == (PaymentStatus.UNKNOWN, 3, 0)
    assert "did not answer" in str(payment.reason) and world.captures("ride_1") == 0

    world.gateway.set_mode("ok")  # no capture under that key: the reconciler captures with the same key
    assert world.reconcile() == 1
    assert world.captures("ride_1") == 1 and world.told() == [("PaymentSucceeded", 1)]
    assert world.store.payments["ride_1"].status == PaymentStatus.SUCCEEDED


def test_a_timeout_after_a_capture_is_retried_with_the_same_key_and_captures_once() -> None:
    world = World("timeout", capture_on_timeout=True)
    world.on_sleep.append(lambda: world.gateway.set_mode("ok"))  # the gateway recovers before the 2nd try
    world.handle(*completed())
    assert world.slept == [0.2] and world.captures("ride_1") == 1
    [(kind, _)] = world.outbox()
    assert kind == "PaymentSucceeded" and world.store.payments["ride_1"].attempts == 2


def test_a_capture_that_succeeded_before_three_timeouts_ends_succeeded_with_one_capture_and_one_event() -> (
    None
):
    world = World("timeout", capture_on_timeout=True)  # it captured, then never answered again
    event, data = completed()
    world.handle(event, data)
    assert world.captures("ride_1") == 1 and world.outbox() == []
    assert world.store.payments["ride_1"].status == PaymentStatus.UNKNOWN
    with pytest.raises(NotRetryable):
        world.retry("ride_1")  # the reconciler settles it, not the operator

    assert world.reconcile() == 0  # the gateway is still out: it stays unknown
    assert world.store.payments["ride_1"].status == PaymentStatus.UNKNOWN
    world.gateway.set_mode("ok")
    assert world.reconcile() == 1
    payment = world.store.payments["ride_1"]
    assert (payment.status, payment.attempts, payment.sequence) == (PaymentStatus.SUCCEEDED, 5, 1)
    assert payment.payment_id == next(iter(world.ledger.rows.values())).charge_id
    assert world.told() == [("PaymentSucceeded", 1)] and world.captures("ride_1") == 1

    with pytest.raises(Stale):  # the same ride version again (a new event id): nothing more
        world.handle(*completed())
    with pytest.raises((Duplicate, Stale)):
        world.handle(event.resent(), data)
    assert world.reconcile() == 0
    assert world.told() == [("PaymentSucceeded", 1)] and world.captures("ride_1") == 1


def test_gateway_unknown_leaves_payments_unknown_until_it_ends_then_they_are_reconciled() -> None:
    faults = Faults({"gateway.unknown": 1.0})
    world = World(faults=faults)
    world.handle(*completed("ride_1"))
    world.handle(*cancelled("ride_2", Money.of("5.00")))
    assert world.outbox() == [] and world.captures("ride_1") == world.captures("ride_2") == 1
    assert {p.status for p in world.store.payments.values()} == {PaymentStatus.UNKNOWN}
    for _ in range(3):
        assert world.reconcile() == 0
    faults.rates["gateway.unknown"] = 0.0  # the window closed
    assert world.reconcile() == 2
    assert sorted(world.told()) == [("PaymentSucceeded", 1), ("PaymentSucceeded", 1)]
    assert world.captures("ride_1") == world.captures("ride_2") == 1
    assert world.store.payments["ride_2"].purpose == "CANCELLATION_FEE"


def test_reconciliation_leaves_a_payment_another_writer_settled_first() -> None:
    world = World("timeout", capture_on_timeout=False)
    world.handle(*completed())
    world.gateway.set_mode("ok")
    unknown = world.store.payments["ride_1"]

    def settled_meanwhile() -> MemoryPaymentUnitOfWork:
        def other_writer() -> None:
            world.store.payments["ride_1"] = replace(unknown, version=unknown.version + 1)

        return MemoryPaymentUnitOfWork(world.store, before_commit=other_writer)

    assert reconcile_payment(settled_meanwhile, "ride_1", charger=world.charger) is None
    assert world.outbox() == [] and world.store.payments["ride_1"].version == 2
    assert reconcile_payment(world.unit_of_work, "ride_none", charger=world.charger) is None


def test_a_reconciliation_round_stops_when_told_to() -> None:
    world = World("timeout", capture_on_timeout=False)
    for ride_id in ("ride_1", "ride_2"):
        world.handle(*completed(ride_id))
    world.gateway.set_mode("ok")
    stop = threading.Event()
    stop.set()
    reconciler = Reconciler(unit_of_work=world.unit_of_work, charger=world.charger, pace_s=1)
    assert reconciler.tick(stop) == 0 and world.outbox() == []
    assert reconciler.tick() == 2


def test_the_reconciler_loop_goes_on_at_once_while_it_settles_full_pages() -> None:
    world = World("timeout", capture_on_timeout=False)
    rides = [f"ride_{n}" for n in range(PAGE + 5)]
    for ride_id in rides:
        world.handle(*completed(ride_id))
    world.gateway.set_mode("ok")
    stop = threading.Event()
    loop = threading.Thread(
        target=Reconciler(unit_of_work=world.unit_of_work, charger=world.charger, pace_s=60).run, args=(stop,)
    )
    loop.start()
    try:
        assert _eventually(lambda: len(world.outbox()) == len(rides), timeout_s=5)  # not 60 s later
    finally:
        stop.set()
        loop.join(5)
    assert not loop.is_alive() and all(world.captures(r) == 1 for r in rides)


def test_operator_retry_of_a_declined_payment_succeeds_with_still_one_capture_and_the_next_sequence() -> None:
    world = World("decline")
    world.handle(*completed())
    world.gateway.set_mode("ok")
    paid = world.retry("ride_1")
    assert paid.status == PaymentStatus.SUCCEEDED and paid.attempts == 2
    assert world.told() == [("PaymentFailed", 1), ("PaymentSucceeded", 2)]
    assert world.captures("ride_1") == 1


def test_a_cancellation_fee_is_charged_once_and_a_free_cancellation_not_at_all() -> None:
    world = World()
    free_event, free = cancelled("ride_free")
    world.handle(free_event, free)
    with pytest.raises(Duplicate):
        world.handle(free_event.resent(), free)
    fee_event, fee = cancelled("ride_fee", Money.of("5.00"))
    world.handle(fee_event, fee)
    with pytest.raises((Duplicate, Stale)):
        world.handle(fee_event.resent(), fee)
    assert "ride_free" not in world.store.payments and world.captures("ride_free") == 0
    assert world.captures("ride_fee") == 1
    [(kind, payload)] = world.outbox()
    assert kind == "PaymentSucceeded" and payload["purpose"] == "CANCELLATION_FEE"


class Wired:
    """The app wired with in-memory adapters; ``before_commit`` actions run (once each) right before the
    next commit of a unit of work, as a competing writer would."""

    def __init__(self, mode: GatewayMode, settings: Settings | None = None) -> None:
        self.settings = settings
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
        settings = self.settings or settings_for("payment")
        return signed(TestClient(SERVICE.app(settings=settings, wire=self.wire)), "bff", "payment")


def test_payment_http_api() -> None:
    wired = Wired("decline")
    with wired.client() as client:
        assert client.get("/v1/ops/gateway").json() == {"mode": "decline"}
        bad = client.put("/v1/ops/gateway", json={"mode": "broken"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")
        missing = client.post("/v1/ops/payments/ride_1/retry")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "payment_not_found")
        assert client.get("/v1/ops/payments/ride_1").status_code == 404

        wired.messaging.deliver("events", completed()[1], subject="ride_1")
        failed = client.get("/v1/ops/payments/ride_1").json()
        assert (failed["status"], failed["purpose"], failed["attempts"]) == ("FAILED", "FARE", 1)
        assert failed["updatedAt"].endswith("Z")
        assert client.get("/v1/ops/gateway/charges", params={"rideId": "ride_1"}).json() == {"charges": []}

        assert client.put("/v1/ops/gateway", json={"mode": "ok"}).json() == {"mode": "ok"}
        paid = client.post("/v1/ops/payments/ride_1/retry")
        assert paid.status_code == 200 and paid.json()["status"] == "SUCCEEDED"
        again = client.post("/v1/ops/payments/ride_1/retry")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "not_retryable")
        [charge] = client.get("/v1/ops/gateway/charges", params={"rideId": "ride_1"}).json()["charges"]
        assert charge["type"] == "capture" and charge["amount"] == {"amount": "23.40", "currency": "EUR"}
        assert charge["chargeId"] == paid.json()["paymentId"] and charge["at"].endswith("Z")
        assert len(client.get("/v1/ops/gateway/charges").json()["charges"]) == 1
        assert [type(p).__name__ for p in wired.store.published()] == ["PaymentFailed", "PaymentSucceeded"]
        assert [o.event.sequence for o in wired.store.outbox] == [1, 2] and paid.json()["sequence"] == 2
        assert client.get("/healthz").json()["service"] == "payment"


def test_a_retry_that_loses_the_race_answers_409() -> None:
    wired = Wired("decline")
    with wired.client() as client:
        for ride_id in ("ride_1", "ride_2"):
            wired.messaging.deliver("events", completed(ride_id)[1], subject=ride_id)
        wired.gateway.set_mode("ok")

        # another operator's retry of ride_1 succeeds first: this one is not retryable any more
        wired.before_commit.append(lambda: client.post("/v1/ops/payments/ride_1/retry"))
        lost = client.post("/v1/ops/payments/ride_1/retry")
        assert (lost.status_code, lost.json()["error"]["code"]) == (409, "not_retryable")
        assert client.get("/v1/ops/payments/ride_1").json()["status"] == "SUCCEEDED"

        # another writer changed ride_2's payment (still FAILED) first: a concurrent update
        def bump() -> None:
            current = wired.store.payments["ride_2"]
            wired.store.payments["ride_2"] = replace(current, version=current.version + 1)

        wired.before_commit.append(bump)
        raced = client.post("/v1/ops/payments/ride_2/retry")
        assert (raced.status_code, raced.json()["error"]["code"]) == (409, "concurrent_update")
        assert client.get("/v1/ops/payments/ride_2").json()["status"] == "FAILED"
        assert wired.ledger.list("ride_1", 10) and wired.ledger.list("ride_2", 10)  # one capture each


def _eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_wired_reconciler_settles_unknown_payments_once_the_gateway_answers() -> None:
    wired = Wired("timeout", settings_for("payment", payment_reconcile_s=0.05))
    with wired.client() as client:
        wired.messaging.deliver("events", completed("ride_1")[1], subject="ride_1")
        unknown = client.get("/v1/ops/payments/ride_1").json()
        assert (unknown["status"], unknown["sequence"]) == ("UNKNOWN", 0)
        assert client.post("/v1/ops/payments/ride_1/retry").json()["error"]["code"] == "not_retryable"
        # the reconciler keeps trying while the gateway gives no answer
        assert _eventually(lambda: client.get("/v1/ops/payments/ride_1").json()["attempts"] >= 6)
        assert (
            client.get("/v1/ops/payments/ride_1").json()["status"] == "UNKNOWN" and wired.store.outbox == []
        )

        assert client.put("/v1/ops/gateway", json={"mode": "ok"}).json() == {"mode": "ok"}
        assert _eventually(lambda: client.get("/v1/ops/payments/ride_1").json()["status"] == "SUCCEEDED")
        [charge] = client.get("/v1/ops/gateway/charges", params={"rideId": "ride_1"}).json()["charges"]
        assert charge["chargeId"] == client.get("/v1/ops/payments/ride_1").json()["paymentId"]
        [told] = wired.store.outbox
        assert (told.event.type.rsplit(".", 1)[1], told.event.sequence) == ("PaymentSucceeded", 1)
