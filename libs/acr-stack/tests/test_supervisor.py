"""The restart policy: a service that exits after start-up is restarted and logged, one that keeps dying
waits longer each time, a service killed for good stays down, and stopping the stack ends the restarts."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acr_stack import runner
from acr_stack.runner import Stack, StackConfig
from acr_stack.supervisor import Exit, RestartPolicy, Supervisor, how_it_ended

POLICY = RestartPolicy(first_s=1.0, max_s=8.0, steady_s=30.0)


@dataclass
class FakeChildren:
    """Processes by name, each an object; ``exited`` says which have exited and how."""

    current: dict[str, object] = field(default_factory=dict)
    exited: dict[str, Exit] = field(default_factory=dict)
    respawned: list[str] = field(default_factory=list)

    def die(self, name: str, code: int, started: float) -> None:
        self.exited[name] = Exit(self.current.setdefault(name, object()), code, started)

    def exits(self) -> dict[str, Exit]:
        return dict(self.exited)

    def respawn(self, name: str, process: object) -> int | None:
        if self.current.get(name) is not process:
            return None
        self.current[name] = object()
        del self.exited[name]
        self.respawned.append(name)
        return 4242


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def supervisor(
    children: FakeChildren, clock: Clock
) -> tuple[Supervisor, list[tuple[str, dict[str, object]]]]:
    said: list[tuple[str, dict[str, object]]] = []
    return Supervisor(children, lambda line, fields: said.append((line, fields)), POLICY, clock), said


def test_an_exit_is_logged_with_its_code_and_restarted_after_the_wait() -> None:
    children, clock = FakeChildren(), Clock()
    watch, said = supervisor(children, clock)
    children.die("payment", -signal.SIGKILL, started=clock.now - 100)
    watch.tick()
    assert said[-1][0] == "payment killed by SIGKILL; restarting it in 1.0 s (restart 1)"
    assert said[-1][1]["exitCode"] == -9 and said[-1][1]["exitedService"] == "payment"
    clock.now += 0.5
    watch.tick()
    assert children.respawned == []
    clock.now += 0.6
    watch.tick()
    assert children.respawned == ["payment"]
    assert said[-1][0] == "payment restarted (pid 4242, restart 1)"
    assert watch.restarts == {"payment": 1}


def test_a_service_that_keeps_dying_waits_longer_each_time_up_to_the_cap() -> None:
    children, clock = FakeChildren(), Clock()
    watch, said = supervisor(children, clock)
    waits = []
    for _ in range(6):
        children.die("reward", 3, started=clock.now - 1)  # dies a second after each start
        watch.tick()
        waits.append(said[-1][1]["delayS"])
        clock.now += 10
        watch.tick()
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert "reward exited with code 3; restarting it in 8.0 s (restart 6)" in [line for line, _ in said]
    children.die("reward", 3, started=clock.now - 60)  # a steady run resets the wait
    watch.tick()
    assert said[-1][1]["delayS"] == 1.0


def test_a_process_started_again_by_someone_else_is_not_restarted_twice() -> None:
    children, clock = FakeChildren(), Clock()
    watch, _ = supervisor(children, clock)
    children.die("bff", -15, started=0)
    watch.tick()
    children.current["bff"] = object()  # e.g. Stack.start_service during the wait
    del children.exited["bff"]
    clock.now += 5
    watch.tick()
    assert children.respawned == []


def test_nothing_is_restarted_once_stopped() -> None:
    children, clock = FakeChildren(), Clock()
    watch, _ = supervisor(children, clock)
    watch.start()
    watch.stop()
    children.die("bff", 1, started=0)
    watch.tick()
    clock.now += 60
    watch.tick()
    assert children.respawned == [] and not watch.running


def test_how_a_process_ended() -> None:
    assert how_it_ended(0) == "exited with code 0"
    assert how_it_ended(-signal.SIGTERM) == "killed by SIGTERM"
    assert how_it_ended(-200) == "killed by signal 200"


# --- the stack's own supervision, with a stand-in for the services -------------------------------------
SLEEPER = "import sys, time; print('up', flush=True); time.sleep(3600)"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    """A stack whose services are sleeping Python processes; supervised, with short waits."""
    monkeypatch.setattr(runner, "service_command", lambda _service, _port: [sys.executable, "-c", SLEEPER])
    config = StackConfig.free(
        services=(), log_dir=tmp_path, restart_policy=RestartPolicy(first_s=0.2, max_s=1.0, steady_s=30.0)
    )
    stack = Stack(config)
    stack.start_service("reward")
    stack.supervise()
    yield stack
    stack.stop()


def pid_of(stack: Stack, service: str) -> int | None:
    proc = stack._procs.get(service)
    return None if proc is None or proc.popen.poll() is not None else proc.popen.pid


def until(check: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def stack_lines(stack: Stack) -> list[dict[str, object]]:
    assert stack.config.log_dir is not None
    log = stack.config.log_dir / "acr-stack.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_killed_service_is_restarted_by_the_stack_with_a_log_line(stack: Stack) -> None:
    first = pid_of(stack, "reward")
    stack.kill("reward")
    until(lambda: pid_of(stack, "reward") not in (None, first))
    lines = stack_lines(stack)
    assert [line["message"] for line in lines][:1] == [
        "reward killed by SIGKILL; restarting it in 0.2 s (restart 1)"
    ]
    assert (
        lines[0]["service"] == "acr-stack" and lines[0]["level"] == "WARNING" and lines[0]["exitCode"] == -9
    )
    assert any(line.get("restartedService") == "reward" for line in lines)
    assert stack.exited() == []  # the CLI goes on
    stack.start_service("reward")  # already running: nothing started twice
    assert stack.alive() == {"reward": True}


def test_a_service_that_exits_by_itself_is_restarted_too(stack: Stack) -> None:
    first = pid_of(stack, "reward")
    assert first is not None
    stack._procs["reward"].popen.send_signal(signal.SIGTERM)
    until(lambda: pid_of(stack, "reward") not in (None, first))
    assert "reward killed by SIGTERM" in str(stack_lines(stack)[0]["message"])


def test_a_service_killed_for_good_stays_down_until_started_again(stack: Stack) -> None:
    stack.kill("reward", for_good=True)
    time.sleep(0.8)
    assert stack.alive() == {} and stack_lines(stack) == []
    stack.start_service("reward")
    first = pid_of(stack, "reward")
    stack.kill("reward")  # supervised again
    until(lambda: pid_of(stack, "reward") not in (None, first))


def test_stopping_the_stack_stops_the_restarts(stack: Stack) -> None:
    popen = stack._procs["reward"].popen
    stack.stop()
    assert popen.poll() is not None
    time.sleep(0.6)
    assert stack.alive() == {} and stack_lines(stack) == []
