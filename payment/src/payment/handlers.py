"""Use cases of the payment context: charge a ride's fare or fee once, retry on operator request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from acr.catalog.payment import PaymentPurpose
from acr.catalog.ride import RideCancelled, RideCompleted
from acr.clock import now
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS
from acr.money import Money
from acr.unit_of_work import Conflict
from payment.domain import (
    ChargeOutcome,
    ChargeRetryPolicy,
    GatewayError,
    NotRetryable,
    Payment,
    PaymentNotFound,
    PaymentStatus,
)
from payment.ports import Gateway, UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Charger:
    """Charges a ride through the gateway: the ride id is the idempotency key (one capture per ride, however
    many tries), transient errors are tried again after the policy's delay."""

    gateway: Gateway
    policy: ChargeRetryPolicy = field(default_factory=ChargeRetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = now

    def charge(self, ride_id: str, amount: Money) -> ChargeOutcome:
        attempt = 0
        while True:
            attempt += 1
            try:
                return ChargeOutcome(attempt, charge=self.gateway.capture(ride_id, ride_id, amount))
            except GatewayError as error:
                delay = self.policy.delay_after(attempt, error)
                if delay is None:
                    log.warning(
                        "charging ride %s failed after %d attempt(s): %s", ride_id, attempt, error.reason
                    )
                    return ChargeOutcome(attempt, reason=error.reason)
                log.info("charging ride %s: %s; retrying in %.2f s", ride_id, error.reason, delay)
                self.sleep(delay)


# --- the queue ---------------------------------------------------------------------------------------------
def on_ride_completed(uow: UnitOfWork, data: RideCompleted, _event: CloudEvent, *, charger: Charger) -> None:
    _pay(uow, charger, data.ride_id, data.rider_id, PaymentPurpose.FARE, data.fare)


def on_ride_cancelled(uow: UnitOfWork, data: RideCancelled, _event: CloudEvent, *, charger: Charger) -> None:
    if data.fee is None:
        return  # a free cancellation: nothing to charge (the marker is still committed)
    _pay(uow, charger, data.ride_id, data.rider_id, PaymentPurpose.CANCELLATION_FEE, data.fee)


def _pay(
    uow: UnitOfWork, charger: Charger, ride_id: str, rider_id: str, purpose: PaymentPurpose, amount: Money
) -> None:
    """The payment record and its outcome event, staged together (the kernel adds the marker)."""
    if uow.payments.get(ride_id) is not None:
        log.info("ride %s already has a payment; nothing to charge", ride_id)
        return
    outcome = charger.charge(ride_id, amount)
    payment = Payment.settle(ride_id, rider_id, purpose, amount, outcome, charger.clock())
    uow.payments.add(payment)
    uow.record(payment.outcome(), subject=ride_id)
    counter = "paymentsSucceeded" if outcome.succeeded else "paymentsFailed"
    uow.after_commit(lambda: COUNTERS.add(counter))


def handlers(*, charger: Charger) -> Handlers[UnitOfWork]:
    """The table of ``acr-payment-events``."""
    return (
        Handlers[UnitOfWork]()
        .on(RideCompleted, on_ride_completed, charger=charger)
        .on(RideCancelled, on_ride_cancelled, charger=charger)
    )


# --- the operator ------------------------------------------------------------------------------------------
def get_payment(uow: UnitOfWork, ride_id: str) -> Payment:
    payment = uow.payments.get(ride_id)
    if payment is None:
        raise PaymentNotFound(f"ride {ride_id} has no payment")
    return payment


def retry_payment(unit_of_work: Callable[[], UnitOfWork], ride_id: str, *, charger: Charger) -> Payment:
    """Charge a FAILED payment again with the same key; on success record ``PaymentSucceeded``. When another
    retry won the race, this one answers ``NotRetryable``."""
    uow = unit_of_work()
    before = get_payment(uow, ride_id)
    before.ensure_retryable()
    after = before.retried(charger.charge(ride_id, before.amount), charger.clock())
    uow.payments.update(before, after)
    if after.status == PaymentStatus.SUCCEEDED:
        uow.record(after.outcome(), subject=ride_id)
    try:
        uow.commit()
    except Conflict:
        current = unit_of_work().payments.get(ride_id)
        if current is not None and current.status == PaymentStatus.SUCCEEDED:
            raise NotRetryable(f"the payment of ride {ride_id} is SUCCEEDED") from None
        raise
    return after
