"""Credentials for tests that call a service's app directly (``TestClient``): a key pair per service and an
ops token, made once per test session, as the embedded stack would give them."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.testclient import TestClient

from acr.identity import ServiceCredentials, new_private_key, public_key_of
from acr.settings import SERVICE_PORTS, Settings

PRIVATE_KEYS = {service: new_private_key() for service in SERVICE_PORTS}
PUBLIC_KEYS = {service: [public_key_of(key)] for service, key in PRIVATE_KEYS.items()}
OPS_TOKEN = secrets.token_urlsafe(32)
OPS_HEADERS = {"X-Ops-Token": OPS_TOKEN}


def settings_for(service: str, **values: Any) -> Settings:
    """``Settings(**values)`` with ``service``'s private key, every public key and the ops token."""
    keys = {"service_key": PRIVATE_KEYS[service], "service_public_keys": PUBLIC_KEYS, "ops_token": OPS_TOKEN}
    return Settings(**(keys | values))


def credentials_of(caller: str) -> ServiceCredentials:
    """What ``caller`` presents: its key, and the ops token on ``/v1/ops/*``."""
    return ServiceCredentials(caller, private_key=PRIVATE_KEYS[caller], ops_token=OPS_TOKEN)


def signed(client: TestClient, caller: str, callee: str, rider: str | None = None) -> TestClient:
    """``client`` signing every request as ``caller`` (acting for ``rider``) does, fresh tokens each time."""
    client.auth = credentials_of(caller).auth(callee, rider)
    return client


def bearer(caller: str, callee: str, rider: str | None = None) -> dict[str, str]:
    """One request's ``Authorization`` header from ``caller`` to ``callee``."""
    return {"Authorization": f"Bearer {credentials_of(caller).token(callee, rider)}"}
