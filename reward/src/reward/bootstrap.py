"""The composition root of reward: its adapters, and how they are put together (in tests, with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from acr.runtime import Consumers, Messaging
from acr.service import Runtime, Service
from reward.adapters.dynamo import DynamoLoyaltyView, DynamoRewardUnitOfWork
from reward.api import Reward, router
from reward.handlers import HANDLERS
from reward.ports import LoyaltyView, UnitOfWork
from reward.topology import TOPOLOGY


@dataclass(frozen=True)
class Adapters:
    consumers: Consumers
    unit_of_work: Callable[[], UnitOfWork]
    loyalty: LoyaltyView


def assemble(_runtime: Runtime, adapters: Adapters) -> Reward:
    adapters.consumers.consume("events", HANDLERS, adapters.unit_of_work)
    return Reward(loyalty=adapters.loyalty)


def aws_adapters(runtime: Runtime) -> Adapters:
    messaging = Messaging(TOPOLOGY, runtime.settings, runtime.loops)
    runtime.messaging = messaging
    return Adapters(
        consumers=messaging,
        unit_of_work=lambda: DynamoRewardUnitOfWork(messaging.unit_of_work()),
        loyalty=DynamoLoyaltyView(messaging.dynamodb),
    )


SERVICE = Service("reward", lambda runtime: assemble(runtime, aws_adapters(runtime)), routers=[router])
