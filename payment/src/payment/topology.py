"""The payment context's slice."""

from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.ride import RideCancelled, RideCompleted
from acr.topology import Index, ServiceTopology, Subscription, Table

PAYMENTS = "acr-payment-payments"
LEDGER = "acr-payment-ledger"
AWAITING_OUTCOME = "awaiting-outcome"  # sparse: the payments whose outcome is unknown, by updatedAt
AWAITING_OUTCOME_KEY = "awaitingOutcome"

TOPOLOGY = ServiceTopology(
    service="payment",
    context="payment",
    publishes=(PaymentSucceeded, PaymentFailed),
    subscriptions=(Subscription("events", (RideCompleted, RideCancelled)),),
    tables=(
        Table(PAYMENTS, "rideId", indexes=(Index(AWAITING_OUTCOME, AWAITING_OUTCOME_KEY, "updatedAt"),)),
        Table(LEDGER, "rideId", "chargeId"),
    ),
    leases=True,  # the reconciler runs on one replica at a time
)
