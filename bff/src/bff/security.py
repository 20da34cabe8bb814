"""FastAPI dependencies: the process state, the rider behind a bearer token (rate limited), the ops guard."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from acr.service import service_state
from bff.auth import Rider, bearer_token
from bff.errors import OpsUnauthorized, RateLimited
from bff.ratelimit import RateLimiter
from bff.state import BffState, Dependencies

State = Annotated[BffState, Depends(service_state)]


def get_deps(state: State) -> Dependencies:
    return state.deps


Deps = Annotated[Dependencies, Depends(get_deps)]


def limit(limiter: RateLimiter, key: str) -> None:
    """Raise ``RateLimited`` when ``key`` spent its budget."""
    retry_after = limiter.acquire(key)
    if retry_after:
        raise RateLimited(retry_after)


def current_rider(state: State, authorization: Annotated[str | None, Header()] = None) -> Rider:
    """The rider of the ``Authorization: Bearer`` token (401 otherwise), within its rate limit."""
    rider = state.signer.verify(bearer_token(authorization))
    limit(state.limiter, rider.rider_id)
    return rider


CurrentRider = Annotated[Rider, Depends(current_rider)]


def require_ops(state: State, x_ops_token: Annotated[str | None, Header()] = None) -> None:
    """401 unless ``X-Ops-Token`` is the configured ops token (constant-time compare)."""
    expected = state.settings.ops_token.encode()
    given = (x_ops_token or "").encode("utf-8", "replace")
    if not hmac.compare_digest(expected, given):
        raise OpsUnauthorized()


def client_key(request: Request) -> str:
    """The rate-limit key of an anonymous caller."""
    return "ip:" + (request.client.host if request.client else "unknown")
