"""Replicas in the stack: each is supervised by its own name (a stand-in for the service, cheap), and a
real service run twice answers behind its entry point, is listed by ``/ops/replicas``' table with its pid,
and a replica killed for good shows as unhealthy while the entry point goes on with the other."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from acr.settings import Settings
from acr_stack import runner
from acr_stack.cli import _replica_lines
from acr_stack.runner import Stack, StackConfig, start_on_free_ports
from acr_stack.supervisor import RestartPolicy
from bff.adapters.http import HttpServiceStats, ServiceHttp
from bff.replicas import replica_table

SLEEPER = "import time; time.sleep(3600)"


def until(check: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


@pytest.fixture
def sleepers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    """Two replicas of reward as sleeping processes, supervised with short waits."""
    monkeypatch.setattr(runner, "service_command", lambda _service, _port: [sys.executable, "-c", SLEEPER])
    config = StackConfig.free(
        services=("reward",),
        env={"ACR_REPLICAS": "reward=2"},
        log_dir=tmp_path,
        restart_policy=RestartPolicy(first_s=0.2, max_s=1.0, steady_s=30.0),
    )
    stack = Stack(config)
    stack.start_service("reward")
    stack.supervise()
    yield stack
    stack.stop()


def test_each_replica_is_supervised_by_its_own_name(sleepers: Stack) -> None:
    first = sleepers.pids()
    assert set(first) == {"reward-1", "reward-2"}
    assert sleepers.config.log_dir is not None and (sleepers.config.log_dir / "reward-2.log").exists()
    sleepers.kill("reward-2")
    until(lambda: sleepers.pids().get("reward-2") not in (None, first["reward-2"]))
    assert sleepers.pids()["reward-1"] == first["reward-1"]
    sleepers.kill("reward-1", for_good=True)
    time.sleep(0.6)
    assert sleepers.alive() == {"reward-2": True}
    sleepers.start_service("reward")  # brings back only the missing one
    assert set(sleepers.alive()) == {"reward-1", "reward-2"}


def test_the_banner_lists_every_replica_with_its_port_and_pid(sleepers: Stack) -> None:
    lines = "\n".join(_replica_lines(sleepers))
    for replica in sleepers.config.replicas("reward"):
        pid = sleepers.pids()[replica.name]
        assert f"reward         {replica.name:<18} :{replica.port:<6} pid {pid}" in lines
    assert _replica_lines(Stack(StackConfig.free())) == []


def _who(url: str) -> str:
    with urllib.request.urlopen(url + "/v1/ops/replica", timeout=5) as response:  # noqa: S310 - loopback
        return str(json.load(response)["replica"])


def _table(stack: Stack) -> list[dict[str, Any]]:
    """What the BFF's ``/ops/replicas`` answers for reward, through the BFF's own HTTP adapter."""
    listed = json.loads(stack.config.service_env("reward-1")["ACR_REPLICA_URLS"])

    async def ask() -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            services = HttpServiceStats(
                {"reward": ServiceHttp(client, "reward", stack.config.url("reward"))}, client
            )
            return (await replica_table(Settings(replica_urls=listed), services))["reward"]

    return asyncio.run(ask())


@pytest.mark.integration
def test_a_service_run_twice_answers_in_turn_and_a_replica_killed_for_good_is_unhealthy(
    tmp_path: Path,
) -> None:
    stack = start_on_free_ports(
        lambda: StackConfig.free(services=("reward",), env={"ACR_REPLICAS": "reward=2"}, log_dir=tmp_path),
        timeout_s=150,
    )
    try:
        entry = stack.config.url("reward")
        assert sorted(_who(entry) for _ in range(4)) == ["reward-1", "reward-1", "reward-2", "reward-2"]
        one, two = stack.config.replicas("reward")
        pids = stack.pids()
        assert _table(stack) == [
            {"replica": "reward-1", "port": one.port, "pid": pids["reward-1"], "healthy": True},
            {"replica": "reward-2", "port": two.port, "pid": pids["reward-2"], "healthy": True},
        ]
        stack.kill("reward-2", for_good=True)
        assert _table(stack)[1] == {"replica": "reward-2", "port": two.port, "pid": None, "healthy": False}
        assert [_who(entry) for _ in range(3)] == ["reward-1"] * 3
    finally:
        stack.stop()
