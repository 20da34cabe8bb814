"""The credentials every internal route requires, as FastAPI dependencies (checked before any work).

A router declares who may call it: ``APIRouter(prefix="/v1", dependencies=[admit("bff")])``; a route that
needs the caller (e.g. the rider it acts for) takes ``Annotated[Caller, THE_SAME_DEPENDENCY]``. Every
``/v1/ops/*`` route takes the ops credential instead: ``APIRouter(prefix="/v1/ops", dependencies=[OPS])``;
``/metrics`` takes it too, also as a bearer token (``SCRAPER``: what Prometheus's ``authorization`` sends).
Only ``/healthz`` is open.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from acr.identity import Caller, Forbidden, ServiceCredentials, Unauthorized

_bearer = HTTPBearer(auto_error=False, scheme_name="serviceToken", description="a service identity token")
_ops_header = APIKeyHeader(
    name="X-Ops-Token", auto_error=False, scheme_name="opsToken", description="the ops credential"
)


def credentials_of(request: Request) -> ServiceCredentials:
    """The credentials of the app serving ``request`` (set when it starts)."""
    found = getattr(request.app.state, "credentials", None)
    if not isinstance(found, ServiceCredentials):  # the app has not started: refuse, never wave through
        raise Unauthorized("this service cannot check credentials yet")
    return found


def admit(*callers: str) -> Any:
    """A dependency: the verified ``Caller`` of the request, one of ``callers`` (401 without a valid
    service token for this service, 403 for a service not named). The OpenAPI document lists the callers
    as the roles of the ``serviceToken`` scheme, e.g. ``{"serviceToken": ["bff"]}``."""

    token = Security(_bearer, scopes=list(callers))  # a default value: the annotation cannot name a local

    def verified_caller(request: Request, bearer: HTTPAuthorizationCredentials | None = token) -> Caller:
        caller = credentials_of(request).verify(bearer.credentials if bearer else None)
        if caller.service not in callers:
            raise Forbidden(f"{caller.service} may not call this route")
        return caller

    return Depends(verified_caller)


def _ops_credential(request: Request, token: Annotated[str | None, Security(_ops_header)]) -> None:
    if not credentials_of(request).ops_token_matches(token):
        raise Unauthorized("the ops credential (X-Ops-Token) is missing or wrong")


OPS = Depends(_ops_credential)

_scraper_bearer = HTTPBearer(
    auto_error=False, scheme_name="opsBearer", description="the ops credential as a bearer token"
)


def _scraper_credential(
    request: Request,
    token: Annotated[str | None, Security(_ops_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_scraper_bearer)],
) -> None:
    """The ops token in ``X-Ops-Token`` (as on every ops route) or as ``Authorization: Bearer`` (a scraper
    such as Prometheus sends only that header)."""
    credentials = credentials_of(request)
    if not (
        credentials.ops_token_matches(token)
        or credentials.ops_token_matches(bearer.credentials if bearer else None)
    ):
        raise Unauthorized("the ops credential (X-Ops-Token, or a bearer token) is missing or wrong")


SCRAPER = Depends(_scraper_credential)


def for_rider(caller: Caller) -> str:
    """The rider a caller acts for; 403 when it acts for itself (a rider's route needs a rider)."""
    if caller.rider is None:
        raise Forbidden("this route acts for a rider: the credential names none")
    return caller.rider
