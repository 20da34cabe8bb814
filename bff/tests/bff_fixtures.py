from __future__ import annotations

from typing import Any

import pytest
from bff_fakes import (
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
from fastapi.testclient import TestClient

from bff.bootstrap import OTHER_SERVICES, create_app
from bff.state import Dependencies


@pytest.fixture(autouse=True)
def _no_resume_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live updates reach test connections at once (the grace period has its own test)."""
    monkeypatch.setattr("bff.push.RESUME_GRACE_S", 0.0)


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
