"""The payment context's slice."""

from acr.catalog.payment import PaymentFailed, PaymentSucceeded
from acr.catalog.ride import RideCancelled, RideCompleted
from acr.topology import Index, ServiceTopology, Subscription, Table

PAYMENTS = "acr-payment-payments"
LEDGER = "acr-payment-ledger"
AWAITING_OUTCOME = "awaiting-outcome"  # sparse: the payments whose outcome is unknown, by updatedAt
AWAITING_OUTCOME_KEY = "awaitingOutcome"
NEWEST_CHARGES = "newest-charges"  # every charge, newest first: the ops list without a ride reads its head
NEWEST_CHARGES_KEY = "ledger"

TOPOLOGY = ServiceTopology(
    service="payment",
    context="payment",
    publishes=(PaymentSucceeded, PaymentFailed),
    subscriptions=(Subscription("events", (RideCompleted, RideCancelled)),),
    tables=(
        Table(PAYMENTS, "rideId", indexes=(Index(AWAITING_OUTCOME, AWAITING_OUTCOME_KEY, "updatedAt"),)),
        Table(LEDGER, "rideId", "chargeId", indexes=(Index(NEWEST_CHARGES, NEWEST_CHARGES_KEY, "at"),)),
    ),
    leases=True,  # the reconciler runs on one replica at a time
)
