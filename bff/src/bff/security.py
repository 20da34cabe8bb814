"""FastAPI dependencies: the process state, the rider behind a bearer token (rate limited), the ops guard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response

from acr.guards import credentials_of
from acr.service import service_state
from acr.web import error_response
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


def require_ops(state: State, request: Request, x_ops_token: Annotated[str | None, Header()] = None) -> None:
    """401 unless ``X-Ops-Token`` is the configured ops token (constant-time compare). Each wrong guess
    spends one of the caller's ``ACR_OPS_GUESSES`` (one comes back a minute): with none left the caller
    gets 429 with ``Retry-After``, even with the right token, so guessing it costs a minute a try."""
    retry_after = state.ops_guesses.retry_after(client_key(request))
    if retry_after:
        raise RateLimited(retry_after)
    if not credentials_of(request).ops_token_matches(x_ops_token):  # the kernel's check, every service's
        if x_ops_token:  # a guess; a call without the header (the dashboard before login) is none
            state.ops_guesses.acquire(client_key(request))
        raise OpsUnauthorized()


def client_key(request: Request) -> str:
    """The rate-limit key of an anonymous caller: its address as the BFF sees it (behind a proxy, the
    proxy's: with ``ACR_REPLICAS`` every client is 127.0.0.1)."""
    return "ip:" + (request.client.host if request.client else "unknown")


KERNEL_OPS_PATHS = ("/v1/ops/", "/metrics")
"""The kernel's own ops routes, which every app has: the BFF serves them at the public entry point too."""


def install_guess_budget(app: FastAPI) -> None:
    """The kernel checks the ops token on its routes (``KERNEL_OPS_PATHS``) the same way in every service;
    on the BFF, which the internet reaches, a wrong credential there spends the caller's wrong-guess budget
    of ``/ops/*`` too, and a caller without one left gets 429 there as well."""

    @app.middleware("http")
    async def guess_budget(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        state: BffState | None = getattr(request.app.state, "service", None)
        if state is None or not request.url.path.startswith(KERNEL_OPS_PATHS):
            return await call_next(request)
        retry_after = state.ops_guesses.retry_after(client_key(request))
        if retry_after:
            refused = RateLimited(retry_after)
            return error_response(refused.status, refused.code, str(refused), refused.headers)
        response = await call_next(request)
        guessed = "x-ops-token" in request.headers or "authorization" in request.headers
        if response.status_code == 401 and guessed:
            state.ops_guesses.acquire(client_key(request))
        return response
