"""Use cases of the reward context: payment outcomes change a rider's loyalty, at most once per ride."""

from __future__ import annotations

import logging

from acr.catalog.payment import PaymentFailed, PaymentFailureReason, PaymentSucceeded
from acr.catalog.reward import RewardPointsEarned, RiderStandingChanged, RiderTierChanged
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.ordering import drop_if_stale
from reward.domain import on_payment
from reward.ports import UnitOfWork

log = logging.getLogger(__name__)


def on_payment_succeeded(uow: UnitOfWork, data: PaymentSucceeded, event: CloudEvent) -> None:
    _apply(uow, data, event, succeeded=True)


def on_payment_failed(uow: UnitOfWork, data: PaymentFailed, event: CloudEvent) -> None:
    _apply(uow, data, event, succeeded=False, failure=data.reason)


def _apply(
    uow: UnitOfWork,
    data: PaymentSucceeded | PaymentFailed,
    event: CloudEvent,
    *,
    succeeded: bool,
    failure: PaymentFailureReason = PaymentFailureReason.CARD_DECLINED,
) -> None:
    """Loyalty, the once-per-ride guard and the events it causes (always the rider's new standing), staged
    together. A lost race on the rider's version or on the guard fails the commit, and the kernel runs this
    again on fresh state."""
    _drop_if_stale(uow, data.ride_id, event.sequence)
    loyalty = uow.riders.get(data.rider_id)
    change = on_payment(
        loyalty, succeeded=succeeded, purpose=data.purpose, amount=data.amount.value, failure=failure
    )
    if change is None:
        log.info(
            "ride %s: payment failed (%s), not by rider %s: no effect", data.ride_id, failure, data.rider_id
        )
        return
    if uow.effects.applied(data.ride_id, change.effect):
        log.info("ride %s already had effect %s on rider %s", data.ride_id, change.effect, data.rider_id)
        return
    uow.riders.save(change.before, change.after)
    uow.effects.add(data.ride_id, change.effect, data.rider_id, event.sequence)
    if change.points_earned is not None:
        earned = RewardPointsEarned(
            ride_id=data.ride_id,
            rider_id=data.rider_id,
            points=change.points_earned,
            total_points=change.after.points,
        )
        uow.record(earned, subject=data.ride_id, sequence=change.after.version)
    if change.tier_changed:
        tier = RiderTierChanged(
            rider_id=data.rider_id, previous_tier=change.before.tier, tier=change.after.tier
        )
        uow.record(tier, subject=data.rider_id, sequence=change.after.version)
    after = change.after
    standing = RiderStandingChanged(
        rider_id=after.rider_id,
        ride_count=after.ride_count,
        points=after.points,
        tier=after.tier,
        rating=after.rating,
    )
    uow.record(standing, subject=data.rider_id, sequence=after.version)  # what rider-stats shows


def _drop_if_stale(uow: UnitOfWork, ride_id: str, sequence: int | None) -> None:
    """A payment outcome not newer than one that already had an effect on the ride is stale (an event
    without a sequence is never). Only some outcomes have an effect here, so a gap is no reason to wait."""
    drop_if_stale(uow.effects.last_sequence(ride_id), sequence, f"payment outcome of ride {ride_id}")


HANDLERS = (
    Handlers[UnitOfWork]().on(PaymentSucceeded, on_payment_succeeded).on(PaymentFailed, on_payment_failed)
)
