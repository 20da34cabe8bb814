"""Replicas in the stack, with a stand-in for the service: each is supervised by its own name, and the
banner lists each with its port and pid (a real service run twice: bff/tests/test_bff_replicas_stack.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acr_stack import runner
from acr_stack.cli import _replica_lines
from acr_stack.runner import Stack, StackConfig
from acr_stack.supervisor import RestartPolicy

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
