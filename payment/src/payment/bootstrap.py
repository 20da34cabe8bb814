"""The composition root of payment: its adapters, and how they are put together (in tests, with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from payment.adapters.dynamo import DynamoLedger, DynamoPaymentUnitOfWork
from payment.adapters.gateway import SimulatedGateway
from payment.api import PaymentState, router
from payment.handlers import Charger, handlers
from payment.ports import OperatedGateway, UnitOfWork
from payment.reconciler import Reconciler
from payment.topology import TOPOLOGY


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    gateway: OperatedGateway


def assemble(runtime: Runtime, adapters: Adapters) -> PaymentState:
    """The payment events' consumer, the reconciler of unknown outcomes and the routes' state."""
    charger = Charger(adapters.gateway)
    adapters.consumers.consume("events", handlers(charger=charger), adapters.unit_of_work)
    reconciler = Reconciler(
        unit_of_work=adapters.unit_of_work, charger=charger, pace_s=runtime.settings.payment_reconcile_s
    )
    runtime.singleton("payment-reconciler", reconciler.run)  # one replica at a time
    return PaymentState(adapters.unit_of_work, charger, adapters.gateway)


def aws_adapters(runtime: Runtime) -> Adapters:
    messaging = Messaging(TOPOLOGY, runtime.settings, runtime.loops)
    runtime.messaging = messaging
    runtime.leases = messaging.leases
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoPaymentUnitOfWork(messaging.unit_of_work()),
        gateway=SimulatedGateway(DynamoLedger(messaging.dynamodb), faults=messaging.faults),
    )


SERVICE = Service("payment", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
