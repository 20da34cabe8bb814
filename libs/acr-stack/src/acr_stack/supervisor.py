"""The stack's restart policy: like a container's ``restart: always``, a service that exits after start-up
is started again, with a log line naming it, how it ended and the restart; one that keeps dying waits
longer each time (doubled from ``first_s`` up to ``max_s``; a run of ``steady_s`` resets the wait).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

TICK_S = 0.2


def how_it_ended(code: int) -> str:
    """``exited with code 3`` or ``killed by SIGKILL`` (a negative return code is a signal)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


@dataclass(frozen=True)
class RestartPolicy:
    first_s: float = 1.0
    max_s: float = 30.0
    steady_s: float = 30.0

    def delay(self, quick_exits: int) -> float:
        """The wait before a restart, after ``quick_exits`` exits in a row that each came within
        ``steady_s`` of their start (0 for an exit after a steady run)."""
        return min(self.max_s, self.first_s * 2.0**quick_exits)


@dataclass(frozen=True)
class Exit:
    """A supervised process that has exited: which one (``process``, compared by identity), how, and
    when it had been started (``time.monotonic``)."""

    process: object
    code: int
    started: float


class Supervised(Protocol):
    """What the supervisor asks of the stack."""

    def exits(self) -> dict[str, Exit]:
        """The supervised processes that have exited, by name."""
        ...

    def respawn(self, name: str, process: object) -> int | None:
        """Start ``name`` again if ``process`` is still the one the stack holds for it; the new pid."""
        ...


@dataclass
class _Pending:
    process: object
    restart_at: float


class Supervisor:
    """Restarts what ``children`` reports as exited, from a thread, until :meth:`stop`."""

    def __init__(
        self,
        children: Supervised,
        say: Callable[[str, dict[str, object]], None],
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._children = children
        self._say = say
        self._policy = policy or RestartPolicy()
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._quick_exits: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No restart after this returns."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            self.tick()

    def tick(self) -> None:
        """Note each new exit (and when to restart it); restart those whose wait is over."""
        now = self._clock()
        exits = self._children.exits()
        for name in set(self._pending) - set(exits):
            del self._pending[name]  # started again meanwhile (e.g. ``Stack.start_service``)
        for name, exit in exits.items():
            pending = self._pending.get(name)
            if pending is None or pending.process is not exit.process:
                self._noted(name, exit, now)
            elif now >= pending.restart_at and not self._stop.is_set():
                self._restart(name, pending)

    def _noted(self, name: str, exit: Exit, now: float) -> None:
        quick = now - exit.started < self._policy.steady_s
        self._quick_exits[name] = self._quick_exits.get(name, -1) + 1 if quick else 0
        delay = self._policy.delay(self._quick_exits[name])
        self._pending[name] = _Pending(exit.process, now + delay)
        restart = self.restarts.get(name, 0) + 1
        self._say(
            f"{name} {how_it_ended(exit.code)}; restarting it in {delay:.1f} s (restart {restart})",
            {"exitedService": name, "exitCode": exit.code, "restart": restart, "delayS": delay},
        )

    def _restart(self, name: str, pending: _Pending) -> None:
        del self._pending[name]
        pid = self._children.respawn(name, pending.process)
        if pid is None:
            return
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self._say(
            f"{name} restarted (pid {pid}, restart {self.restarts[name]})",
            {"restartedService": name, "pid": pid, "restart": self.restarts[name]},
        )
