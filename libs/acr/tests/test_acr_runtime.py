"""A service's messaging: fault windows reach its channels whenever they can be opened, its stats carry the
age of its oldest pending outbox row, and its consumers run the kernel's unit-of-work faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acr import faults
from acr.catalog.fleet import NoCarAvailable
from acr.runtime import Messaging
from acr.settings import Settings
from acr.topology import discover
from acr_testkit.aws import in_process_messaging

DISPATCHER = next(t for t in discover() if t.service == "car-dispatcher")
ADDRESSES = next(t for t in discover() if t.service == "address-finder")


@pytest.fixture(autouse=True)
def own_process_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets a fresh process-wide ``Faults`` (windows opened here do not outlive the test)."""
    monkeypatch.setattr(faults, "_PROCESS_FAULTS", None)


@pytest.fixture
def emulated() -> Iterator[Messaging]:
    """car-dispatcher's messaging as it runs against an emulator (fault windows can be opened)."""
    with in_process_messaging(DISPATCHER, Settings(aws_endpoint_url="http://127.0.0.1:4566")) as messaging:
        yield messaging


def _record(messaging: Messaging, ride: str) -> None:
    uow = messaging.unit_of_work()
    uow.record(NoCarAvailable(ride_id=ride, reason="x"), subject=ride)
    uow.commit()


def test_a_window_opened_at_run_time_reaches_the_relays_channels(emulated: Messaging) -> None:
    assert emulated.relay is not None and not emulated.faults.enabled  # ACR_FAULTS names nothing
    emulated.faults.open("eventbridge.throttle", 1.0, 60)
    _record(emulated, "ride_1")
    assert emulated.relay.drain_once() == 1
    stats = emulated.stats()
    assert stats["oldestPendingMs"] is not None  # still pending: throttled, waiting on its row
    assert stats["faultsInjected"] == {"eventbridge.throttle": 1}
    assert stats["dlq"]["acr-car-dispatcher-producer-dlq"] == 0


def test_in_aws_mode_the_channels_are_not_wrapped_and_a_window_changes_nothing() -> None:
    with in_process_messaging(DISPATCHER, Settings(aws_endpoint_url="")) as messaging:
        assert messaging.relay is not None
        messaging.faults.open("eventbridge.throttle", 1.0, 60)
        _record(messaging, "ride_1")
        assert messaging.relay.drain_once() == 1
        assert messaging.stats()["oldestPendingMs"] is None and messaging.faults.injected == {}


def test_the_stats_carry_the_age_of_the_oldest_pending_row_and_null_without_an_outbox(
    emulated: Messaging,
) -> None:
    assert emulated.stats()["oldestPendingMs"] is None
    _record(emulated, "ride_1")
    age = emulated.stats()["oldestPendingMs"]
    assert isinstance(age, float) and 0 <= age < 5_000
    with in_process_messaging(ADDRESSES) as no_outbox:
        assert no_outbox.stats()["oldestPendingMs"] is None
