from __future__ import annotations

import pytest

from acr.money import Money
from payment.domain import (
    CardDeclined,
    Charge,
    ChargeOutcome,
    GatewayTimeout,
    NotRetryable,
    Payment,
    PaymentStatus,
    Purpose,
    RetryPolicy,
    charge_id_for,
)

FARE = Money.of("12.50")
CHARGE = Charge(charge_id_for("ride_1"), "ride_1", "capture", FARE, "2026-01-01T00:00:00.000Z", "ride_1")


def test_transient_errors_back_off_exponentially_then_give_up() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.2)
    timeout = GatewayTimeout("no answer")
    assert [policy.delay_after(n, timeout) for n in (1, 2, 3)] == [0.2, 0.4, None]


def test_a_decline_is_never_retried() -> None:
    assert RetryPolicy().delay_after(1, CardDeclined("declined")) is None


def test_a_capture_settles_the_payment_with_the_charge_id() -> None:
    payment = Payment.settle("ride_1", "rdr", Purpose.FARE, FARE, ChargeOutcome(2, charge=CHARGE), "t")
    assert (payment.status, payment.payment_id, payment.attempts) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        2,
    )
    with pytest.raises(NotRetryable):
        payment.retried(ChargeOutcome(1, charge=CHARGE), "t2")


def test_a_failed_payment_can_be_retried_until_it_succeeds() -> None:
    failed = Payment.settle("ride_1", "rdr", Purpose.FARE, FARE, ChargeOutcome(3, reason="timeout"), "t")
    assert (failed.status, failed.reason, failed.payment_id) == (
        PaymentStatus.FAILED,
        "timeout",
        "pay_ride_1",
    )
    still = failed.retried(ChargeOutcome(1, reason="declined"), "t2")
    assert (still.status, still.attempts, still.reason, still.version) == (
        PaymentStatus.FAILED,
        4,
        "declined",
        2,
    )
    paid = still.retried(ChargeOutcome(1, charge=CHARGE), "t3")
    assert (paid.status, paid.payment_id, paid.attempts, paid.reason) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        5,
        None,
    )


def test_the_charge_id_follows_from_the_idempotency_key() -> None:
    assert charge_id_for("ride_1") == charge_id_for("ride_1") != charge_id_for("ride_2")
