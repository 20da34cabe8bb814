from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from acr.catalog.payment import PaymentFailed, PaymentPurpose, PaymentSucceeded
from acr.money import Money
from payment.domain import (
    CardDeclined,
    Charge,
    ChargeOutcome,
    ChargeRetryPolicy,
    GatewayTimeout,
    NotRetryable,
    Payment,
    PaymentStatus,
    charge_id_for,
)

FARE = Money.of("12.50")
T = datetime(2026, 1, 1, tzinfo=UTC)
T2, T3 = T + timedelta(seconds=1), T + timedelta(seconds=2)
CHARGE = Charge(charge_id_for("ride_1"), "ride_1", "capture", FARE, T, "ride_1")


def test_transient_errors_back_off_exponentially_then_give_up() -> None:
    policy = ChargeRetryPolicy(max_attempts=3, base_delay_s=0.2)
    timeout = GatewayTimeout("no answer")
    assert [policy.delay_after(n, timeout) for n in (1, 2, 3)] == [0.2, 0.4, None]


def test_a_decline_is_never_retried() -> None:
    assert ChargeRetryPolicy().delay_after(1, CardDeclined("declined")) is None


def test_a_capture_settles_the_payment_with_the_charge_id() -> None:
    payment = Payment.settle("ride_1", "rdr", PaymentPurpose.FARE, FARE, ChargeOutcome(2, charge=CHARGE), T)
    assert (payment.status, payment.payment_id, payment.attempts) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        2,
    )
    with pytest.raises(NotRetryable):
        payment.retried(ChargeOutcome(1, charge=CHARGE), T2)


def test_a_failed_payment_can_be_retried_until_it_succeeds() -> None:
    failed = Payment.settle("ride_1", "rdr", PaymentPurpose.FARE, FARE, ChargeOutcome(3, reason="timeout"), T)
    assert (failed.status, failed.reason, failed.payment_id) == (
        PaymentStatus.FAILED,
        "timeout",
        "pay_ride_1",
    )
    still = failed.retried(ChargeOutcome(1, reason="declined"), T2)
    assert (still.status, still.attempts, still.reason, still.version) == (
        PaymentStatus.FAILED,
        4,
        "declined",
        2,
    )
    paid = still.retried(ChargeOutcome(1, charge=CHARGE), T3)
    assert (paid.status, paid.payment_id, paid.attempts, paid.reason) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        5,
        None,
    )


def test_the_charge_id_follows_from_the_idempotency_key() -> None:
    assert charge_id_for("ride_1") == charge_id_for("ride_1") != charge_id_for("ride_2")


def test_a_payment_tells_its_outcome() -> None:
    paid = Payment.settle("ride_1", "rdr", PaymentPurpose.FARE, FARE, ChargeOutcome(1, charge=CHARGE), T)
    assert paid.outcome() == PaymentSucceeded(
        ride_id="ride_1",
        rider_id="rdr",
        payment_id=CHARGE.charge_id,
        amount=FARE,
        purpose=PaymentPurpose.FARE,
    )
    failed = Payment.settle(
        "ride_1", "rdr", PaymentPurpose.CANCELLATION_FEE, FARE, ChargeOutcome(1, reason="declined"), T
    )
    assert failed.outcome() == PaymentFailed(
        ride_id="ride_1",
        rider_id="rdr",
        payment_id="pay_ride_1",
        amount=FARE,
        purpose=PaymentPurpose.CANCELLATION_FEE,
        reason="declined",
    )
