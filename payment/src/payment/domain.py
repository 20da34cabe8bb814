"""The payment context's rules (pure): the payment state machine, the charge outcome, the charge retry
policy. Only a definite decline fails a payment; an outcome nobody knows stays UNKNOWN until it is known."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from acr.catalog.payment import PaymentFailed, PaymentFailureReason, PaymentPurpose, PaymentSucceeded
from acr.errors import ServiceError
from acr.money import Money

GatewayMode = Literal["ok", "decline", "timeout", "slow"]
GATEWAY_MODES: tuple[GatewayMode, ...] = ("ok", "decline", "timeout", "slow")


class PaymentStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # a definite decline
    UNKNOWN = "UNKNOWN"  # the gateway gave no answer: whether it captured is not known yet


# --- the gateway's vocabulary --------------------------------------------------------------------------
@dataclass(frozen=True)
class Charge:
    """One row of the gateway's ledger."""

    charge_id: str
    ride_id: str
    type: Literal["capture", "refund"]
    amount: Money
    at: datetime
    idempotency_key: str


def charge_id_for(idempotency_key: str) -> str:
    """The gateway derives a capture's id from its idempotency key: one key, one capture."""
    return "ch_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


class GatewayError(Exception):
    """The gateway did not capture, or did not say. ``transient`` errors may succeed when tried again."""

    transient = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CardDeclined(GatewayError):
    """The issuer said no: trying again with the same card changes nothing."""


class OutcomeUnknown(GatewayError):
    """The gateway gave no answer (its answer was lost, or it could not be reached): it may or may not have
    captured."""

    transient = True


class GatewayTimeout(OutcomeUnknown):
    """The gateway did not answer in time."""


# --- the charge retry policy -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ChargeRetryPolicy:
    """How often one charge tries the gateway: exponential backoff for transient gateway errors,
    ``base_delay_s * factor**(n-1)`` before try n+1, at most ``max_attempts`` tries."""

    max_attempts: int = 3
    base_delay_s: float = 0.2
    factor: float = 2.0

    def delay_after(self, attempt: int, error: GatewayError) -> float | None:
        """Seconds to wait before the next try after ``attempt`` failed with ``error``; None = give up."""
        if not error.transient or attempt >= self.max_attempts:
            return None
        return float(self.base_delay_s * self.factor ** (attempt - 1))


class Verdict(StrEnum):
    """What the gateway said about a charge."""

    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ChargeOutcome:
    """What a series of tries achieved: a charge, a decline, or no answer (with the last error's reason)."""

    attempts: int
    verdict: Verdict
    charge: Charge | None = None
    reason: str | None = None

    @classmethod
    def captured(cls, attempts: int, charge: Charge) -> ChargeOutcome:
        return cls(attempts, Verdict.CAPTURED, charge=charge)

    @classmethod
    def declined(cls, attempts: int, reason: str) -> ChargeOutcome:
        return cls(attempts, Verdict.DECLINED, reason=reason)

    @classmethod
    def unknown(cls, attempts: int, reason: str) -> ChargeOutcome:
        return cls(attempts, Verdict.UNKNOWN, reason=reason)

    @property
    def succeeded(self) -> bool:
        return self.verdict == Verdict.CAPTURED


# --- the payment state machine ---------------------------------------------------------------------------
class PaymentNotFound(ServiceError):
    status, code = 404, "payment_not_found"


class NotRetryable(ServiceError):
    status, code = 409, "not_retryable"


class NotReconcilable(ValueError):
    """Only a payment whose outcome is unknown is reconciled."""


_STATUS = {
    Verdict.CAPTURED: PaymentStatus.SUCCEEDED,
    Verdict.DECLINED: PaymentStatus.FAILED,
    Verdict.UNKNOWN: PaymentStatus.UNKNOWN,
}


@dataclass(frozen=True)
class Payment:
    """One payment per ride (the ride id is the gateway's idempotency key): SUCCEEDED, FAILED (a definite
    decline) or UNKNOWN (settled later by reconciliation). ``version`` counts the row's writes;
    ``sequence`` is that of the last outcome it told (0: none yet): 1 for the first, one more for each later
    one. ``ride_sequence`` is the ride version (the ``sequence`` of the ride event) that asked for it: a
    trigger not newer is stale (None: the event carried none, or the row predates it)."""

    ride_id: str
    rider_id: str
    purpose: PaymentPurpose
    amount: Money
    status: PaymentStatus
    payment_id: str
    attempts: int
    reason: str | None = None
    updated_at: datetime | None = None
    version: int = 1
    sequence: int = 0
    ride_sequence: int | None = None

    @staticmethod
    def settle(
        ride_id: str,
        rider_id: str,
        purpose: PaymentPurpose,
        amount: Money,
        outcome: ChargeOutcome,
        at: datetime,
        ride_sequence: int | None = None,
    ) -> Payment:
        """The first outcome of charging a ride (an UNKNOWN one tells nothing yet), asked for by the ride's
        version ``ride_sequence``."""
        status = _STATUS[outcome.verdict]
        payment_id = outcome.charge.charge_id if outcome.charge is not None else failed_payment_id(ride_id)
        sequence = 0 if status == PaymentStatus.UNKNOWN else 1
        return Payment(
            ride_id,
            rider_id,
            purpose,
            amount,
            status,
            payment_id,
            outcome.attempts,
            outcome.reason,
            updated_at=at,
            sequence=sequence,
            ride_sequence=ride_sequence,
        )

    def ensure_retryable(self) -> None:
        """Only a FAILED payment can be charged again (by an operator)."""
        if self.status != PaymentStatus.FAILED:
            raise NotRetryable(f"the payment of ride {self.ride_id} is {self.status.value}")

    def retried(self, outcome: ChargeOutcome, at: datetime) -> Payment:
        """The payment after an operator retry: SUCCEEDED with the charge, still FAILED, or UNKNOWN."""
        self.ensure_retryable()
        return self._after(outcome, at)

    def reconciled(self, outcome: ChargeOutcome, at: datetime) -> Payment:
        """The UNKNOWN payment after it was reconciled: SUCCEEDED, FAILED, or still UNKNOWN."""
        if self.status != PaymentStatus.UNKNOWN:
            raise NotReconcilable(f"the payment of ride {self.ride_id} is {self.status.value}")
        return self._after(outcome, at)

    def _after(self, outcome: ChargeOutcome, at: datetime) -> Payment:
        """The next version; a known status that differs from this one is a new outcome (sequence + 1)."""
        status = _STATUS[outcome.verdict]
        told = status != PaymentStatus.UNKNOWN and status != self.status
        return replace(
            self,
            status=status,
            payment_id=outcome.charge.charge_id if outcome.charge is not None else self.payment_id,
            attempts=self.attempts + outcome.attempts,
            reason=outcome.reason,
            updated_at=at,
            version=self.version + 1,
            sequence=self.sequence + 1 if told else self.sequence,
        )

    def news(self, before: Payment | None) -> PaymentSucceeded | PaymentFailed | None:
        """The event to record now that ``before`` (None: no payment) became this payment: its outcome when
        its sequence grew, else None."""
        if self.sequence > (before.sequence if before is not None else 0):
            return self.outcome()
        return None

    def outcome(self) -> PaymentSucceeded | PaymentFailed:
        """The event that tells the payment's state: ``PaymentSucceeded`` or ``PaymentFailed`` (a decline);
        an UNKNOWN payment has none (``ValueError``)."""
        if self.status == PaymentStatus.SUCCEEDED:
            return PaymentSucceeded(
                ride_id=self.ride_id,
                rider_id=self.rider_id,
                payment_id=self.payment_id,
                amount=self.amount,
                purpose=self.purpose,
            )
        if self.status == PaymentStatus.FAILED:
            return PaymentFailed(
                ride_id=self.ride_id,
                rider_id=self.rider_id,
                payment_id=self.payment_id,
                amount=self.amount,
                purpose=self.purpose,
                reason=PaymentFailureReason.CARD_DECLINED,
            )
        raise ValueError(f"the outcome of the payment of ride {self.ride_id} is not known yet")


def failed_payment_id(ride_id: str) -> str:
    """A failed payment has no charge; its id names the payment itself."""
    return f"pay_{ride_id}"
