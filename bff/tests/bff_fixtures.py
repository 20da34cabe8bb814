"""The BFF's fixtures (loaded for the whole workspace by the root conftest): its app wired with fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bff_fakes import (
    SETTINGS,
    FakeAddressFinder,
    FakeChaos,
    FakeDeadLetters,
    FakeFleet,
    FakeLoyalty,
    FakePayments,
    FakeRideManager,
    FakeServiceStats,
    auth,
)
from fastapi.testclient import TestClient

from acr.service import Runtime
from acr_testkit.messaging import FakeMessaging
from bff.bootstrap import OTHER_SERVICES, SERVICE, assemble
from bff.state import BffState, Dependencies


@pytest.fixture(autouse=True)
def _no_resume_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live updates reach test connections at once (the grace period has its own test)."""
    monkeypatch.setattr("bff.push.RESUME_GRACE_S", 0.0)


@pytest.fixture
def push_messaging() -> FakeMessaging:
    """Where the BFF's push consumer subscribes; ``deliver`` hands it an event as SQS would."""
    return FakeMessaging()


@pytest.fixture
def deps(push_messaging: FakeMessaging) -> Dependencies:
    return Dependencies(
        ride_manager=FakeRideManager(),
        addresses=FakeAddressFinder(),
        fleet=FakeFleet(),
        loyalty=FakeLoyalty(),
        payments=FakePayments(),
        services=FakeServiceStats(OTHER_SERVICES),
        dead_letters=FakeDeadLetters(OTHER_SERVICES),
        consumers=push_messaging,
        chaos=FakeChaos(),
    )


@pytest.fixture
def client(deps: Dependencies) -> Iterator[TestClient]:
    """The BFF app wired with ``deps``, its lifespan running (the same wiring as production's)."""

    def wire(runtime: Runtime) -> BffState:
        return assemble(runtime, deps)

    with TestClient(SERVICE.app(settings=SETTINGS, wire=wire)) as test_client:
        yield test_client


@pytest.fixture
def rider(client: TestClient) -> tuple[str, dict[str, str]]:
    body = client.post("/api/v1/riders", json={"name": "Ada"}).json()
    return body["riderId"], auth(body["token"])
