"""Use cases of the payment context: charge a ride's fare or fee once, settle an unknown outcome by
reconciliation, retry on operator request."""

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
from acr.ordering import drop_if_stale
from acr.unit_of_work import Conflict
from payment.domain import (
    CardDeclined,
    Charge,
    ChargeOutcome,
    ChargeRetryPolicy,
    NotRetryable,
    OutcomeUnknown,
    Payment,
    PaymentNotFound,
    PaymentStatus,
)
from payment.ports import Gateway, UnitOfWork

log = logging.getLogger(__name__)

STATUS_COUNTERS = {
    PaymentStatus.SUCCEEDED: "paymentsSucceeded",
    PaymentStatus.FAILED: "paymentsFailed",
    PaymentStatus.UNKNOWN: "paymentsUnknown",
}


@dataclass(frozen=True)
class Charger:
    """Charges a ride through the gateway: the ride id is the idempotency key (one capture per ride, however
    many tries); a try whose outcome is unknown is tried again after the policy's delay."""

    gateway: Gateway
    policy: ChargeRetryPolicy = field(default_factory=ChargeRetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = now

    def charge(self, ride_id: str, amount: Money, *, unknown: bool = False) -> ChargeOutcome:
        """Up to the policy's tries. Once an outcome is unknown (``unknown``: an earlier charge's already
        was), each try first asks the gateway for the key's capture and captures only when there is none.
        A decline ends the tries at once."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return ChargeOutcome.captured(attempt, self._try(ride_id, amount, reconcile=unknown))
            except CardDeclined as declined:
                log.warning("charging ride %s: %s", ride_id, declined.reason)
                return ChargeOutcome.declined(attempt, declined.reason)
            except OutcomeUnknown as error:
                unknown = True
                delay = self.policy.delay_after(attempt, error)
                if delay is None:
                    log.warning(
                        "charging ride %s: unknown after %d try(s): %s", ride_id, attempt, error.reason
                    )
                    return ChargeOutcome.unknown(attempt, error.reason)
                log.info("charging ride %s: %s; trying again in %.2f s", ride_id, error.reason, delay)
                self.sleep(delay)

    def _try(self, ride_id: str, amount: Money, *, reconcile: bool) -> Charge:
        if reconcile:
            found = self.gateway.find(ride_id, ride_id)
            if found is not None:
                return found
        return self.gateway.capture(ride_id, ride_id, amount)


def _tell(uow: UnitOfWork, before: Payment | None, after: Payment) -> None:
    """Record the outcome ``after`` tells that ``before`` did not, with its sequence; count a new status."""
    news = after.news(before)
    if news is not None:
        uow.record(news, subject=after.ride_id, sequence=after.sequence)
    if before is None or before.status != after.status:
        uow.after_commit(lambda: COUNTERS.add(STATUS_COUNTERS[after.status]))


# --- the queue ---------------------------------------------------------------------------------------------
def on_ride_completed(uow: UnitOfWork, data: RideCompleted, event: CloudEvent, *, charger: Charger) -> None:
    _pay(uow, charger, data.ride_id, event.sequence, data.rider_id, PaymentPurpose.FARE, data.fare)


def on_ride_cancelled(uow: UnitOfWork, data: RideCancelled, event: CloudEvent, *, charger: Charger) -> None:
    if data.fee is None:
        return  # a free cancellation: nothing to charge (the marker is still committed)
    fee = PaymentPurpose.CANCELLATION_FEE
    _pay(uow, charger, data.ride_id, event.sequence, data.rider_id, fee, data.fee)


def _pay(
    uow: UnitOfWork,
    charger: Charger,
    ride_id: str,
    ride_sequence: int | None,
    rider_id: str,
    purpose: PaymentPurpose,
    amount: Money,
) -> None:
    """The payment record and its outcome event, staged together (the kernel adds the marker). An outcome
    that is unknown is recorded UNKNOWN and tells nothing: the reconciler settles it.

    The ride events are create-like triggers here: the first one creates the ride's one payment and keeps
    the ride version (``ride_sequence``) that asked for it. A later trigger is ordered by the ride's
    ``sequence`` against that version: not newer is stale (a second relay's copy, the watchdog's resend of
    the same version); newer finds the ride already charged. Payment hears only some ride versions: a gap
    is no wait."""
    charged = uow.payments.get(ride_id)
    if charged is not None:
        drop_if_stale(charged.ride_sequence, ride_sequence, f"charge of ride {ride_id}")
        log.info("ride %s already has a payment; nothing to charge", ride_id)
        return
    outcome = charger.charge(ride_id, amount)
    payment = Payment.settle(ride_id, rider_id, purpose, amount, outcome, charger.clock(), ride_sequence)
    uow.payments.add(payment)
    _tell(uow, None, payment)


def handlers(*, charger: Charger) -> Handlers[UnitOfWork]:
    """The table of ``acr-payment-events``."""
    return (
        Handlers[UnitOfWork]()
        .on(RideCompleted, on_ride_completed, charger=charger)
        .on(RideCancelled, on_ride_cancelled, charger=charger)
    )


# --- reconciliation ----------------------------------------------------------------------------------------
def reconcile_payment(
    unit_of_work: Callable[[], UnitOfWork], ride_id: str, *, charger: Charger
) -> Payment | None:
    """Settle an UNKNOWN payment against the gateway by its key: captured -> SUCCEEDED, no capture -> captured
    again with the same key, still no answer -> stays UNKNOWN. Returns the payment as written; None when it is
    not UNKNOWN (any more) or another writer changed it first."""
    uow = unit_of_work()
    before = uow.payments.get(ride_id)
    if before is None or before.status != PaymentStatus.UNKNOWN:
        return None
    after = before.reconciled(charger.charge(ride_id, before.amount, unknown=True), charger.clock())
    uow.payments.update(before, after)
    _tell(uow, before, after)
    try:
        uow.commit()
    except Conflict:
        log.info("the payment of ride %s changed while it was reconciled; left as it is now", ride_id)
        return None
    return after


# --- the operator ------------------------------------------------------------------------------------------
def get_payment(uow: UnitOfWork, ride_id: str) -> Payment:
    payment = uow.payments.get(ride_id)
    if payment is None:
        raise PaymentNotFound(f"ride {ride_id} has no payment")
    return payment


def retry_payment(unit_of_work: Callable[[], UnitOfWork], ride_id: str, *, charger: Charger) -> Payment:
    """Charge a FAILED payment again with the same key; on success record ``PaymentSucceeded`` (an unknown
    outcome leaves it UNKNOWN, for the reconciler). When another retry won the race, this one answers
    ``NotRetryable``."""
    uow = unit_of_work()
    before = get_payment(uow, ride_id)
    before.ensure_retryable()
    after = before.retried(charger.charge(ride_id, before.amount), charger.clock())
    uow.payments.update(before, after)
    _tell(uow, before, after)
    try:
        uow.commit()
    except Conflict:
        current = unit_of_work().payments.get(ride_id)
        if current is not None and current.status != PaymentStatus.FAILED:
            raise NotRetryable(f"the payment of ride {ride_id} is {current.status.value}") from None
        raise
    return after
