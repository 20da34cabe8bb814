"""The payment context's published language (bus ``acr-payment``, source ``acr.payment``).

Each outcome of a ride's payment carries the CloudEvent ``sequence``: 1 for the first outcome told, one more
for each later one (an operator retry, a reconciliation). A payment whose outcome is unknown tells nothing
until it is known.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator

from acr.catalog.base import EventData, EventSpec
from acr.money import Money


class PaymentPurpose(StrEnum):
    FARE = "FARE"
    CANCELLATION_FEE = "CANCELLATION_FEE"


class PaymentFailureReason(StrEnum):
    """Why a payment failed. ``CARD_DECLINED``: the issuer said no (the rider's card). ``GATEWAY_ERROR``: the
    system's own failure; payment no longer tells it (an unknown outcome is reconciled, never failed), but
    events recorded before the reason was typed may carry it."""

    CARD_DECLINED = "CARD_DECLINED"
    GATEWAY_ERROR = "GATEWAY_ERROR"


def _typed_reason(value: object) -> object:
    """A reason as events recorded before the reason was typed carry it (the gateway's own words) becomes
    ``CARD_DECLINED`` when the words say declined, else ``GATEWAY_ERROR``; a typed reason stays as it is."""
    if not isinstance(value, str) or value in PaymentFailureReason.__members__:
        return value
    if "declined" in value.lower():
        return PaymentFailureReason.CARD_DECLINED
    return PaymentFailureReason.GATEWAY_ERROR


class PaymentSucceeded(EventData):
    ride_id: str
    rider_id: str
    payment_id: str
    amount: Money
    purpose: PaymentPurpose


class PaymentFailed(EventData):
    ride_id: str
    rider_id: str
    payment_id: str
    amount: Money
    purpose: PaymentPurpose
    reason: Annotated[PaymentFailureReason, BeforeValidator(_typed_reason)]


SPECS = (
    EventSpec("PaymentSucceeded", "payment", PaymentSucceeded, "update"),
    EventSpec("PaymentFailed", "payment", PaymentFailed, "update"),
)
