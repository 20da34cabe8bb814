"""What one BFF process holds: its ports, token signer, rate limiter, write log and push hub."""

from __future__ import annotations

from dataclasses import dataclass

from acr.settings import Settings
from bff.auth import TokenSigner
from bff.consistency import WriteLog
from bff.ports import AddressFinder, DeadLetters, Fleet, Loyalty, Payments, RideManager, ServiceStats
from bff.push import PushHub
from bff.ratelimit import RateLimiter


@dataclass
class Dependencies:
    """One adapter per port: HTTP in production, in-memory fakes in unit tests."""

    ride_manager: RideManager
    addresses: AddressFinder
    fleet: Fleet
    loyalty: Loyalty
    payments: Payments
    services: ServiceStats
    dead_letters: DeadLetters


@dataclass
class BffState:
    """Everything the routes and the consumer share."""

    settings: Settings
    deps: Dependencies
    signer: TokenSigner
    limiter: RateLimiter
    signup_limiter: RateLimiter
    writes: WriteLog
    hub: PushHub


def build_state(settings: Settings, deps: Dependencies) -> BffState:
    """The process state around a set of adapters."""
    return BffState(
        settings=settings,
        deps=deps,
        signer=TokenSigner(settings.token_secret, settings.token_ttl_s),
        limiter=RateLimiter(rate=20.0, burst=40.0),
        # Sign-ups are anonymous: limited per client address, generously (tests and demos share one).
        signup_limiter=RateLimiter(rate=100.0, burst=1000.0),
        writes=WriteLog(),
        hub=PushHub(deps.ride_manager, eta_interval_s=settings.eta_push_s),
    )
