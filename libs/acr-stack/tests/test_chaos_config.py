"""Only a chaos stack puts the fault proxy between the services and the emulator: each service gets its
own proxy port, the BFF the control API's address; one-shot steps still talk to the emulator directly."""

from __future__ import annotations

import pytest

from acr.settings import SERVICE_PORTS
from acr_stack.runner import StackConfig


@pytest.fixture(autouse=True)
def _no_chaos_from_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACR_CHAOS", raising=False)


def test_a_chaos_stack_sends_each_service_through_its_own_proxy_port() -> None:
    config = StackConfig.free(env={"ACR_CHAOS": "1"})
    assert config.chaos and set(config.proxy_ports) == set(SERVICE_PORTS)
    assert len(set(config.proxy_ports.values()) | {config.emulator_port}) == len(SERVICE_PORTS) + 1
    for service, port in config.proxy_ports.items():
        env = config.service_env(service)
        assert env["ACR_AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert env["ACR_CHAOS_CONTROL_URL"] == config.control_url == f"http://127.0.0.1:{config.control_port}"
    assert config.service_env("topology")["ACR_AWS_ENDPOINT_URL"] == config.endpoint
    assert config.service_env()["ACR_AWS_ENDPOINT_URL"] == config.endpoint


def test_chaos_can_come_from_the_runners_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACR_CHAOS", "true")
    assert StackConfig.free().chaos


@pytest.mark.parametrize(
    "env",
    [{}, {"ACR_CHAOS": "0"}, {"ACR_CHAOS": "1", "ACR_AWS_ENDPOINT_URL": ""}],
    ids=["off", "zero", "aws-mode"],
)
def test_without_chaos_every_service_talks_to_the_emulator(env: dict[str, str]) -> None:
    config = StackConfig.free(env=env)
    assert not config.chaos and config.proxy_ports == {} and config.control_url == ""
    bff = config.service_env("bff")
    assert "ACR_CHAOS_CONTROL_URL" not in bff
    assert bff["ACR_AWS_ENDPOINT_URL"] == env.get("ACR_AWS_ENDPOINT_URL", config.endpoint)
