from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import EndpointConnectionError
from payment_fakes import MemoryLedger

from acr.faults import Faults
from acr.money import Money
from payment.adapters.gateway import SimulatedGateway
from payment.domain import CardDeclined, Charge, GatewayTimeout, OutcomeUnknown

FARE = Money.of("10.00")


def _gateway(**kwargs: object) -> tuple[SimulatedGateway, MemoryLedger, list[float]]:
    slept: list[float] = []
    ledger = MemoryLedger()
    return SimulatedGateway(ledger, sleep=slept.append, **kwargs), ledger, slept  # type: ignore[arg-type]


def test_ok_captures_once_per_key() -> None:
    gateway, ledger, _ = _gateway()
    first = gateway.capture("ride_1", "ride_1", FARE)
    again = gateway.capture("ride_1", "ride_1", Money.of("99.00"))
    assert again == first and len(ledger.rows) == 1
    assert [c.type for c in gateway.charges("ride_1")] == ["capture"]
    assert gateway.charges("ride_2") == []


def test_decline_writes_no_ledger_row() -> None:
    gateway, ledger, _ = _gateway(mode="decline")
    with pytest.raises(CardDeclined) as declined:
        gateway.capture("ride_1", "ride_1", FARE)
    assert not declined.value.transient and ledger.rows == {}


def test_timeout_may_have_captured_and_a_replay_finds_that_capture() -> None:
    gateway, ledger, slept = _gateway(mode="timeout", timeout_s=1.0)
    with pytest.raises(GatewayTimeout) as timeout:
        gateway.capture("ride_1", "ride_1", FARE)
    assert timeout.value.transient and slept == [1.0] and len(ledger.rows) == 1
    with pytest.raises(GatewayTimeout):
        gateway.capture("ride_1", "ride_1", FARE)
    gateway.set_mode("ok")
    charge = gateway.capture("ride_1", "ride_1", FARE)
    assert len(ledger.rows) == 1 and charge == next(iter(ledger.rows.values()))


def test_a_look_up_finds_the_capture_of_a_key_or_none() -> None:
    gateway, _, _ = _gateway()
    assert gateway.find("ride_1", "ride_1") is None
    charge = gateway.capture("ride_1", "ride_1", FARE)
    assert gateway.find("ride_1", "ride_1") == charge and gateway.find("ride_2", "ride_2") is None


def test_timeout_leaves_look_ups_without_an_answer_too() -> None:
    gateway, ledger, slept = _gateway(mode="timeout", timeout_s=1.0)
    with pytest.raises(GatewayTimeout):
        gateway.capture("ride_1", "ride_1", FARE)
    with pytest.raises(GatewayTimeout):
        gateway.find("ride_1", "ride_1")
    assert slept == [1.0, 1.0]
    gateway.set_mode("ok")
    assert gateway.find("ride_1", "ride_1") == next(iter(ledger.rows.values()))


def test_gateway_unknown_captures_then_loses_every_answer_for_as_long_as_it_lasts() -> None:
    faults = Faults({"gateway.unknown": 1.0})
    gateway, ledger, _ = _gateway(faults=faults)
    for _ in range(3):  # no bound per key
        with pytest.raises(OutcomeUnknown) as unknown:
            gateway.capture("ride_1", "ride_1", FARE)
        assert unknown.value.transient
        with pytest.raises(OutcomeUnknown):
            gateway.find("ride_1", "ride_1")
    assert len(ledger.rows) == 1 and faults.injected["gateway.unknown"] == 6
    faults.rates["gateway.unknown"] = 0.0
    assert gateway.find("ride_1", "ride_1") == gateway.capture("ride_1", "ride_1", FARE)
    assert len(ledger.rows) == 1


class UnreachableLedger:
    def find(self, ride_id: str, charge_id: str) -> Charge | None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")

    def add(self, charge: Charge) -> Charge:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")

    def list(self, ride_id: str | None, limit: int) -> list[Charge]:
        return []


def test_a_ledger_that_cannot_be_reached_is_an_unknown_outcome() -> None:
    gateway = SimulatedGateway(UnreachableLedger(), sleep=lambda s: None)
    with pytest.raises(OutcomeUnknown) as capture:
        gateway.capture("ride_1", "ride_1", FARE)
    with pytest.raises(OutcomeUnknown) as find:
        gateway.find("ride_1", "ride_1")
    assert "could not be reached" in capture.value.reason and "could not be reached" in find.value.reason


def test_timeout_without_capture_leaves_the_ledger_empty() -> None:
    gateway, ledger, _ = _gateway(mode="timeout", capture_on_timeout=False)
    with pytest.raises(GatewayTimeout):
        gateway.capture("ride_1", "ride_1", FARE)
    assert ledger.rows == {}


def test_a_replayed_key_answers_with_its_capture_even_in_decline_mode() -> None:
    gateway, _, _ = _gateway()
    charge = gateway.capture("ride_1", "ride_1", FARE)
    gateway.set_mode("decline")
    assert gateway.capture("ride_1", "ride_1", FARE) == charge


def test_slow_answers_after_about_two_seconds() -> None:
    gateway, ledger, slept = _gateway(mode="slow")
    gateway.capture("ride_1", "ride_1", FARE)
    assert slept == [2.0] and len(ledger.rows) == 1


def test_charges_are_listed_newest_first() -> None:
    times = iter([datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)])
    ledger = MemoryLedger()
    gateway = SimulatedGateway(ledger, clock=lambda: next(times))
    gateway.capture("ride_1", "ride_1", FARE)
    gateway.capture("ride_2", "ride_2", FARE)
    assert [c.ride_id for c in gateway.charges()] == ["ride_2", "ride_1"]
    assert len(gateway.charges(limit=1)) == 1


def test_an_unknown_mode_is_refused() -> None:
    gateway, _, _ = _gateway()
    with pytest.raises(ValueError):
        gateway.set_mode("broken")  # type: ignore[arg-type]
