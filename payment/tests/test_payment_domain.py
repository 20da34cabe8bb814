from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from acr.catalog.payment import PaymentFailed, PaymentFailureReason, PaymentPurpose, PaymentSucceeded
from acr.money import Money
from payment.domain import (
    CardDeclined,
    Charge,
    ChargeOutcome,
    ChargeRetryPolicy,
    GatewayTimeout,
    NotReconcilable,
    NotRetryable,
    OutcomeUnknown,
    Payment,
    PaymentStatus,
    charge_id_for,
)

FARE = Money.of("12.50")
T = datetime(2026, 1, 1, tzinfo=UTC)
T2, T3 = T + timedelta(seconds=1), T + timedelta(seconds=2)
CHARGE = Charge(charge_id_for("ride_1"), "ride_1", "capture", FARE, T, "ride_1")
CAPTURED = ChargeOutcome.captured(1, CHARGE)
NO_ANSWER = ChargeOutcome.unknown(3, "the gateway did not answer within 1 s")


def _settle(outcome: ChargeOutcome, purpose: PaymentPurpose = PaymentPurpose.FARE) -> Payment:
    return Payment.settle("ride_1", "rdr", purpose, FARE, outcome, T)


def test_unknown_outcomes_back_off_exponentially_then_give_up() -> None:
    policy = ChargeRetryPolicy(max_attempts=3, base_delay_s=0.2)
    for error in (GatewayTimeout("no answer"), OutcomeUnknown("answer lost")):
        assert [policy.delay_after(n, error) for n in (1, 2, 3)] == [0.2, 0.4, None]


def test_a_decline_is_never_retried() -> None:
    assert ChargeRetryPolicy().delay_after(1, CardDeclined("declined")) is None


def test_a_capture_settles_the_payment_with_the_charge_id_as_its_first_outcome() -> None:
    payment = _settle(ChargeOutcome.captured(2, CHARGE))
    assert (payment.status, payment.payment_id, payment.attempts, payment.sequence) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        2,
        1,
    )
    with pytest.raises(NotRetryable):
        payment.retried(CAPTURED, T2)
    with pytest.raises(NotReconcilable):
        payment.reconciled(CAPTURED, T2)


def test_a_declined_payment_can_be_retried_until_it_succeeds_and_each_outcome_is_one_more() -> None:
    failed = _settle(ChargeOutcome.declined(1, "declined"))
    assert (failed.status, failed.reason, failed.payment_id, failed.sequence) == (
        PaymentStatus.FAILED,
        "declined",
        "pay_ride_1",
        1,
    )
    still = failed.retried(ChargeOutcome.declined(1, "declined"), T2)
    assert (still.status, still.attempts, still.version, still.sequence) == (PaymentStatus.FAILED, 2, 2, 1)
    assert still.news(failed) is None  # nothing new to tell
    paid = still.retried(CAPTURED, T3)
    assert (paid.status, paid.payment_id, paid.attempts, paid.reason, paid.sequence) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        3,
        None,
        2,
    )
    assert paid.news(still) == paid.outcome()


def test_an_unknown_outcome_is_never_failed_and_tells_nothing_until_reconciled() -> None:
    unknown = _settle(NO_ANSWER)
    assert (unknown.status, unknown.sequence, unknown.attempts) == (PaymentStatus.UNKNOWN, 0, 3)
    assert unknown.news(None) is None
    with pytest.raises(ValueError):
        unknown.outcome()
    with pytest.raises(NotRetryable):
        unknown.retried(CAPTURED, T2)  # the reconciler's, not the operator's

    still = unknown.reconciled(ChargeOutcome.unknown(1, "still no answer"), T2)
    assert (still.status, still.attempts, still.reason, still.version, still.sequence) == (
        PaymentStatus.UNKNOWN,
        4,
        "still no answer",
        2,
        0,
    )
    assert still.news(unknown) is None
    paid = still.reconciled(CAPTURED, T3)
    assert (paid.status, paid.payment_id, paid.sequence, paid.version) == (
        PaymentStatus.SUCCEEDED,
        CHARGE.charge_id,
        1,
        3,
    )
    assert isinstance(paid.news(still), PaymentSucceeded)


def test_a_reconciled_decline_fails_the_payment() -> None:
    failed = _settle(NO_ANSWER).reconciled(ChargeOutcome.declined(1, "declined"), T2)
    assert (failed.status, failed.sequence) == (PaymentStatus.FAILED, 1)
    assert isinstance(failed.news(None), PaymentFailed)


def test_a_retry_whose_outcome_is_unknown_waits_for_reconciliation_then_tells_one_more() -> None:
    failed = _settle(ChargeOutcome.declined(1, "declined"))
    unknown = failed.retried(ChargeOutcome.unknown(3, "no answer"), T2)
    assert (unknown.status, unknown.sequence, unknown.news(failed)) == (PaymentStatus.UNKNOWN, 1, None)
    paid = unknown.reconciled(CAPTURED, T3)
    assert (paid.status, paid.sequence) == (PaymentStatus.SUCCEEDED, 2)


def test_the_charge_id_follows_from_the_idempotency_key() -> None:
    assert charge_id_for("ride_1") == charge_id_for("ride_1") != charge_id_for("ride_2")


def test_a_payment_tells_its_outcome() -> None:
    assert _settle(CAPTURED).outcome() == PaymentSucceeded(
        ride_id="ride_1",
        rider_id="rdr",
        payment_id=CHARGE.charge_id,
        amount=FARE,
        purpose=PaymentPurpose.FARE,
    )
    failed = _settle(
        ChargeOutcome.declined(1, "card declined by the issuer"), PaymentPurpose.CANCELLATION_FEE
    )
    assert failed.outcome() == PaymentFailed(
        ride_id="ride_1",
        rider_id="rdr",
        payment_id="pay_ride_1",
        amount=FARE,
        purpose=PaymentPurpose.CANCELLATION_FEE,
        reason=PaymentFailureReason.CARD_DECLINED,
    )
