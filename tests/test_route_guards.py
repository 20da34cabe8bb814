"""Every internal route requires a verified credential: each operation of every service but the BFF's
public API takes a service identity (``acr.guards.admit``: the ``serviceToken`` scheme) or, under
``/v1/ops/``, the ops credential (``acr.guards.OPS``: ``opsToken``); ``/metrics`` takes the ops credential
either way (``acr.guards.SCRAPER``: ``opsToken`` or ``opsBearer``); only ``/healthz`` is open. Read from
each app's OpenAPI document (FastAPI derives it from the routes' dependencies): no route can forget."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from acr.settings import SERVICE_PORTS


def _operations(service: str) -> dict[str, Any]:
    app = importlib.import_module(f"{service.replace('-', '_')}.bootstrap").SERVICE.app()
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {f"{method.upper()} {path}": op for path, ops in paths.items() for method, op in ops.items()}


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_every_route_but_health_needs_a_credential(service: str) -> None:
    operations = _operations(service)
    if service == "bff":  # its public API takes the rider's token; the kernel's ops routes are checked here
        operations = {
            name: op for name, op in operations.items() if " /v1/" in name or name == "GET /metrics"
        }
    schemes = {name: op.get("security") for name, op in operations.items()}
    callers = {  # the services each identity route admits, as the roles of its serviceToken scheme
        name: set(scheme[0].get("serviceToken", ())) if scheme and len(scheme) == 1 else set()
        for name, scheme in schemes.items()
    }
    expected = {
        name: None
        if name.endswith(" /healthz")
        else [{"opsToken": []}, {"opsBearer": []}]
        if name == "GET /metrics"
        else [{"opsToken": []}]
        if " /v1/ops/" in name
        else [{"serviceToken": sorted(callers[name])}]
        for name in operations
    }
    assert len(schemes) > 3 and "GET /metrics" in schemes and schemes == expected
    assert all(
        callers[name] and callers[name] <= set(SERVICE_PORTS)
        for name, s in expected.items()
        if s and "serviceToken" in s[0]
    )
