"""The payment context's slice."""

from acr.catalog import PaymentFailed, PaymentSucceeded
from acr.topology import ServiceTopology, Table

TOPOLOGY = ServiceTopology(
    service="payment",
    context="payment",
    publishes=(PaymentSucceeded, PaymentFailed),
    tables=(Table("acr-payment-payments", "rideId"), Table("acr-payment-ledger", "rideId", "chargeId")),
)
