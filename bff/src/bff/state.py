"""What one BFF process holds: its adapters, token signer, rate limiters, write log, push hub and the ids
of the fault windows it opened."""

from __future__ import annotations

from dataclasses import dataclass, field

from acr.runtime import Consumers
from acr.settings import Settings
from bff.auth import TokenSigner
from bff.consistency import WriteLog
from bff.fault_ids import FaultIds
from bff.handoff import AppLoop
from bff.ports import AddressFinder, Chaos, DeadLetters, Fleet, Loyalty, Payments, RideManager, ServiceStats
from bff.push import PushHub
from bff.ratelimit import RateLimiter


@dataclass(frozen=True)
class Dependencies:
    """The BFF's adapters: one per port (HTTP and SQS in production, in-memory fakes in tests), and where
    the push consumer subscribes."""

    ride_manager: RideManager
    addresses: AddressFinder
    fleet: Fleet
    loyalty: Loyalty
    payments: Payments
    services: ServiceStats
    dead_letters: DeadLetters
    consumers: Consumers
    chaos: Chaos


@dataclass(frozen=True)
class BffState:
    """Everything the routes and the push consumer share."""

    settings: Settings
    deps: Dependencies
    signer: TokenSigner
    limiter: RateLimiter
    signup_limiter: RateLimiter
    ops_guesses: RateLimiter
    writes: WriteLog
    hub: PushHub
    app_loop: AppLoop
    fault_ids: FaultIds = field(default_factory=FaultIds)
