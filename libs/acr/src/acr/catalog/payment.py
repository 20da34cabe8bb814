"""The payment context's published language (bus ``acr-payment``, source ``acr.payment``)."""

from __future__ import annotations

from enum import StrEnum

from acr.catalog.base import EventData, EventSpec
from acr.money import Money


class PaymentPurpose(StrEnum):
    FARE = "FARE"
    CANCELLATION_FEE = "CANCELLATION_FEE"


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
    reason: str


SPECS = (
    EventSpec("PaymentSucceeded", "payment", PaymentSucceeded, "create"),
    EventSpec("PaymentFailed", "payment", PaymentFailed, "create"),
)
