"""The payment context's slice."""

from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.ride import RideCancelled, RideCompleted
from acr.topology import ServiceTopology, Subscription, Table

PAYMENTS = "acr-payment-payments"
LEDGER = "acr-payment-ledger"

TOPOLOGY = ServiceTopology(
    service="payment",
    context="payment",
    publishes=(PaymentSucceeded, PaymentFailed),
    subscriptions=(Subscription("events", (RideCompleted, RideCancelled)),),
    tables=(Table(PAYMENTS, "rideId"), Table(LEDGER, "rideId", "chargeId")),
)
