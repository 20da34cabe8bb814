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
from payment.topology import TOPOLOGY


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    gateway: OperatedGateway


def assemble(_runtime: Runtime, adapters: Adapters) -> PaymentState:
    charger = Charger(adapters.gateway)
    adapters.consumers.consume("events", handlers(charger=charger), adapters.unit_of_work)
    return PaymentState(adapters.unit_of_work, charger, adapters.gateway)


def aws_adapters(runtime: Runtime) -> Adapters:
    messaging = Messaging(TOPOLOGY, runtime.settings, runtime.loops)
    runtime.messaging = messaging
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoPaymentUnitOfWork(messaging.unit_of_work()),
        gateway=SimulatedGateway(DynamoLedger(messaging.dynamodb), faults=messaging.faults),
    )


SERVICE = Service("payment", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
