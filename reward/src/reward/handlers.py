"""Use cases of the reward context: payment outcomes change a rider's loyalty, at most once per ride."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from acr import catalog
from acr.catalog import EventData, PaymentFailed, PaymentSucceeded, RewardPointsEarned, RiderTierChanged
from acr.consumer import Handler, idempotent
from acr.envelope import CloudEvent
from acr.topology import bus_name
from acr.unit_of_work import Destination, Outgoing
from reward.domain import on_payment
from reward.ports import UnitOfWork

log = logging.getLogger(__name__)
REWARD_BUS = Destination("bus", bus_name("reward"))


def on_payment_succeeded(uow: UnitOfWork, data: PaymentSucceeded, _event: CloudEvent) -> None:
    _apply(uow, data, succeeded=True)


def on_payment_failed(uow: UnitOfWork, data: PaymentFailed, _event: CloudEvent) -> None:
    _apply(uow, data, succeeded=False)


def _apply(uow: UnitOfWork, data: PaymentSucceeded | PaymentFailed, *, succeeded: bool) -> None:
    """State + guard + events staged together; the marker and the commit come from ``idempotent``.
    A lost race on the rider's version or on the guard raises ``Conflict`` at commit: redelivered later."""
    loyalty = uow.riders.get(data.rider_id)
    change = on_payment(loyalty, succeeded=succeeded, purpose=data.purpose, amount=data.amount.value)
    if uow.effects.applied(data.ride_id, change.effect):
        log.info("ride %s already had effect %s on rider %s", data.ride_id, change.effect, data.rider_id)
        return
    uow.riders.save(change.before, change.after)
    uow.effects.add(data.ride_id, change.effect, data.rider_id)
    if change.points_earned is not None:
        earned = RewardPointsEarned(
            ride_id=data.ride_id,
            rider_id=data.rider_id,
            points=change.points_earned,
            total_points=change.after.points,
        )
        uow.record(Outgoing(catalog.record(earned, subject=data.ride_id), REWARD_BUS))
    if change.tier_changed:
        tier = RiderTierChanged(
            rider_id=data.rider_id, previous_tier=change.before.tier, tier=change.after.tier
        )
        uow.record(
            Outgoing(catalog.record(tier, subject=data.rider_id, sequence=change.after.version), REWARD_BUS)
        )


EVENT_HANDLERS: dict[type[EventData], Callable[[Any, Any, CloudEvent], None]] = {
    PaymentSucceeded: on_payment_succeeded,
    PaymentFailed: on_payment_failed,
}


def consumer(uow: Callable[[], UnitOfWork]) -> Handler:
    """The handler for ``acr-reward-events``."""
    return idempotent(uow, EVENT_HANDLERS)
