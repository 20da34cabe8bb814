"""Use cases of the payment context: charge a ride's fare or fee once, retry on operator request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acr import catalog
from acr.catalog.base import EventData
from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.ride import RideCancelled, RideCompleted
from acr.consumer import Handler, idempotent
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS
from acr.money import Money
from acr.topology import bus_name
from acr.unit_of_work import Conflict, Destination, Outgoing
from payment.adapters.gateway import now_iso
from payment.domain import (
    ChargeOutcome,
    GatewayError,
    NotRetryable,
    Payment,
    PaymentNotFound,
    PaymentStatus,
    Purpose,
    RetryPolicy,
)
from payment.ports import Gateway, UnitOfWork

log = logging.getLogger(__name__)
PAYMENT_BUS = Destination("bus", bus_name("payment"))


def announcement(payment: Payment) -> Outgoing:
    """The outcome event of a payment, on the payment bus."""
    data: EventData
    if payment.status == PaymentStatus.SUCCEEDED:
        data = PaymentSucceeded(
            ride_id=payment.ride_id,
            rider_id=payment.rider_id,
            payment_id=payment.payment_id,
            amount=payment.amount,
            purpose=payment.purpose.value,
        )
    else:
        data = PaymentFailed(
            ride_id=payment.ride_id,
            rider_id=payment.rider_id,
            payment_id=payment.payment_id,
            amount=payment.amount,
            purpose=payment.purpose.value,
            reason=payment.reason or "payment failed",
        )
    return Outgoing(catalog.record(data, subject=payment.ride_id), PAYMENT_BUS)


@dataclass
class PaymentService:
    uow: Callable[[], UnitOfWork]
    gateway: Gateway
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], str] = now_iso

    # --- the queue -------------------------------------------------------------------------------------
    def consumer(self) -> Handler:
        """The handler for ``acr-payment-events``: payment record + outcome event + marker in one commit."""
        handlers: dict[type[EventData], Callable[[Any, Any, CloudEvent], None]] = {
            RideCompleted: self.on_ride_completed,
            RideCancelled: self.on_ride_cancelled,
        }
        return idempotent(self.uow, handlers)

    def on_ride_completed(self, uow: UnitOfWork, data: RideCompleted, _event: CloudEvent) -> None:
        self._pay(uow, data.ride_id, data.rider_id, Purpose.FARE, data.fare)

    def on_ride_cancelled(self, uow: UnitOfWork, data: RideCancelled, _event: CloudEvent) -> None:
        if data.fee is None:
            return  # a free cancellation: nothing to charge (the marker is still committed)
        self._pay(uow, data.ride_id, data.rider_id, Purpose.CANCELLATION_FEE, data.fee)

    def _pay(self, uow: UnitOfWork, ride_id: str, rider_id: str, purpose: Purpose, amount: Money) -> None:
        if uow.payments.get(ride_id) is not None:
            log.info("ride %s already has a payment; nothing to charge", ride_id)
            return
        outcome = self.charge(ride_id, amount)
        payment = Payment.settle(ride_id, rider_id, purpose, amount, outcome, self.clock())
        uow.payments.add(payment)
        uow.record(announcement(payment))
        COUNTERS.add("paymentsSucceeded" if outcome.succeeded else "paymentsFailed")

    # --- the gateway -----------------------------------------------------------------------------------
    def charge(self, ride_id: str, amount: Money) -> ChargeOutcome:
        """Capture with the ride id as idempotency key, retrying transient errors with backoff."""
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

    # --- operator --------------------------------------------------------------------------------------
    def get(self, ride_id: str) -> Payment:
        payment = self.uow().payments.get(ride_id)
        if payment is None:
            raise PaymentNotFound(f"ride {ride_id} has no payment")
        return payment

    def retry(self, ride_id: str) -> Payment:
        """Charge a FAILED payment again with the same key; on success publish ``PaymentSucceeded``."""
        uow = self.uow()
        before = uow.payments.get(ride_id)
        if before is None:
            raise PaymentNotFound(f"ride {ride_id} has no payment")
        before.ensure_retryable()
        after = before.retried(self.charge(ride_id, before.amount), self.clock())
        uow.payments.update(before, after)
        if after.status == PaymentStatus.SUCCEEDED:
            uow.record(announcement(after))
        try:
            uow.commit()
        except Conflict:
            current = self.uow().payments.get(ride_id)
            if current is not None and current.status == PaymentStatus.SUCCEEDED:
                raise NotRetryable(f"the payment of ride {ride_id} is SUCCEEDED") from None
            raise
        return after
