"""The payment context's rules (pure): the payment state machine, the charge outcome, the charge retry
policy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from acr.catalog.payment import PaymentFailed, PaymentPurpose, PaymentSucceeded
from acr.errors import ServiceError
from acr.money import Money

GatewayMode = Literal["ok", "decline", "timeout", "slow"]
GATEWAY_MODES: tuple[GatewayMode, ...] = ("ok", "decline", "timeout", "slow")


class PaymentStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


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
    """The gateway did not capture. ``transient`` errors may succeed when tried again."""

    transient = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CardDeclined(GatewayError):
    """The issuer said no: trying again with the same card changes nothing."""


class GatewayTimeout(GatewayError):
    """The gateway did not answer in time; it may or may not have captured."""

    transient = True


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


@dataclass(frozen=True)
class ChargeOutcome:
    """What a series of tries achieved: a charge, or the last error's reason."""

    attempts: int
    charge: Charge | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.charge is not None


# --- the payment state machine ---------------------------------------------------------------------------
class PaymentNotFound(ServiceError):
    status, code = 404, "payment_not_found"


class NotRetryable(ServiceError):
    status, code = 409, "not_retryable"


@dataclass(frozen=True)
class Payment:
    """One payment per ride (the ride id is the gateway's idempotency key): SUCCEEDED or FAILED."""

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

    @staticmethod
    def settle(
        ride_id: str,
        rider_id: str,
        purpose: PaymentPurpose,
        amount: Money,
        outcome: ChargeOutcome,
        at: datetime,
    ) -> Payment:
        """The first outcome of charging a ride."""
        if outcome.charge is not None:
            status, payment_id, reason = PaymentStatus.SUCCEEDED, outcome.charge.charge_id, None
        else:
            status, payment_id, reason = PaymentStatus.FAILED, failed_payment_id(ride_id), outcome.reason
        return Payment(ride_id, rider_id, purpose, amount, status, payment_id, outcome.attempts, reason, at)

    def ensure_retryable(self) -> None:
        """Only a FAILED payment can be charged again (by an operator)."""
        if self.status != PaymentStatus.FAILED:
            raise NotRetryable(f"the payment of ride {self.ride_id} is {self.status.value}")

    def retried(self, outcome: ChargeOutcome, at: datetime) -> Payment:
        """The payment after an operator retry: SUCCEEDED with the charge, or still FAILED."""
        self.ensure_retryable()
        attempts = self.attempts + outcome.attempts
        if outcome.charge is not None:
            return replace(
                self,
                status=PaymentStatus.SUCCEEDED,
                payment_id=outcome.charge.charge_id,
                attempts=attempts,
                reason=None,
                updated_at=at,
                version=self.version + 1,
            )
        return replace(
            self, attempts=attempts, reason=outcome.reason, updated_at=at, version=self.version + 1
        )

    def outcome(self) -> PaymentSucceeded | PaymentFailed:
        """The event that tells the payment's state: ``PaymentSucceeded`` or ``PaymentFailed``."""
        if self.status == PaymentStatus.SUCCEEDED:
            return PaymentSucceeded(
                ride_id=self.ride_id,
                rider_id=self.rider_id,
                payment_id=self.payment_id,
                amount=self.amount,
                purpose=self.purpose,
            )
        return PaymentFailed(
            ride_id=self.ride_id,
            rider_id=self.rider_id,
            payment_id=self.payment_id,
            amount=self.amount,
            purpose=self.purpose,
            reason=self.reason or "payment failed",
        )


def failed_payment_id(ride_id: str) -> str:
    """A failed payment has no charge; its id names the payment itself."""
    return f"pay_{ride_id}"
