from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient


def _unshadow_package(name: str) -> None:
    """pytest's importlib mode names this file ``bff.tests.conftest`` and registers the folder
    ``/work/main/bff`` as a namespace package ``bff``, shadowing the real ``bff`` (src layout);
    put the real package back before anything imports from it."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) is None:
        del sys.modules[name]
        importlib.import_module(name)


_unshadow_package("bff")
sys.path.insert(0, str(Path(__file__).parent))

from bff_fakes import (  # noqa: E402
    SETTINGS,
    FakeAddressFinder,
    FakeDeadLetters,
    FakeFleet,
    FakeLoyalty,
    FakePayments,
    FakeRideManager,
    FakeServiceStats,
    auth,
)

from bff.bootstrap import OTHER_SERVICES, create_app  # noqa: E402
from bff.state import Dependencies  # noqa: E402


@pytest.fixture
def deps() -> Dependencies:
    return Dependencies(
        ride_manager=FakeRideManager(),
        addresses=FakeAddressFinder(),
        fleet=FakeFleet(),
        loyalty=FakeLoyalty(),
        payments=FakePayments(),
        services=FakeServiceStats(OTHER_SERVICES),
        dead_letters=FakeDeadLetters(),
    )


@pytest.fixture
def client(deps: Dependencies) -> Any:
    with TestClient(create_app(dependencies=deps, settings=SETTINGS)) as test_client:
        yield test_client


@pytest.fixture
def rider(client: TestClient) -> tuple[str, dict[str, str]]:
    body = client.post("/api/v1/riders", json={"name": "Ada"}).json()
    return body["riderId"], auth(body["token"])
