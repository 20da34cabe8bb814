"""Start, watch and stop the embedded stack (used by ``make run`` and the system tests).

Start-up fails fast and says why: every process's output is kept (its last lines), and the moment any
process exits before the stack is up, or a service is not healthy in time, ``start`` stops everything
and raises :class:`StartupFailed` naming the process, its exit code or ``/healthz`` answer, and its last
lines.
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from acr.settings import SERVICE_PORTS

PR_SET_PDEATHSIG = 1
CITY_SERVICES = frozenset({"address-finder", "car-dispatcher", "route-monitor", "car-simulator"})
TAIL_LINES = 40
REPORT_LINES = 12
FAILURE_GRACE_S = 2.5
EMULATOR_MODULE = "acr_stack.emulator"
FREE_PORTS = (20_000, 32_768)  # where free_port looks: above make run's ports, below the ephemeral range
_handed_out: set[int] = set()
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Failure|Invalid\w*)\b.*")


def free_port() -> int:
    """A TCP port free right now, below the kernel's ephemeral range, and not handed out before by this
    process. (A port the kernel picks for ``bind(0)`` is in the ephemeral range, where any outgoing
    connection, e.g. one of another stack's keep-alive connections, can take it before the stack binds it.)
    """
    low, high = FREE_PORTS
    first_ephemeral = _first_ephemeral_port()
    if low + 1000 < first_ephemeral < high:
        high = first_ephemeral
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


def _first_ephemeral_port() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere the bind check still catches a taken port


def _die_with_parent() -> None:
    """Child processes get SIGTERM if the runner dies, so nothing is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class StartupFailed(RuntimeError):
    """A process of the stack exited, or a service was not healthy in time, during start-up."""


class StartupTimedOut(StartupFailed):
    """Something the start-up waits for did not happen in time."""


class StartupCancelled(RuntimeError):
    """Start-up was interrupted (Ctrl-C) before the stack was up."""


@dataclass
class StackConfig:
    """Ports, settings and where the logs go. ``fixed()`` is ``make run``; ``free()`` is for tests.

    ``env`` applies to every process; ``service_env_overrides`` to one service only."""

    emulator_port: int
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    services: tuple[str, ...] = tuple(SERVICE_PORTS)
    service_env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def fixed(cls, **kwargs: object) -> StackConfig:
        return cls(emulator_port=4566, ports=dict(SERVICE_PORTS), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def free(cls, **kwargs: object) -> StackConfig:
        return cls(emulator_port=free_port(), ports={s: free_port() for s in SERVICE_PORTS}, **kwargs)  # type: ignore[arg-type]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def service_env(self, service: str | None = None) -> dict[str, str]:
        """The environment of one process of the stack (``service`` None: the shared part)."""
        env = dict(os.environ)
        env.update(
            {
                "ACR_AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": env.get("ACR_AWS_REGION", "us-east-1"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"ACR_{s.upper().replace('-', '_')}_URL": self.url(s) for s in self.ports})
        env.update(self.env)
        env.update(self.service_env_overrides.get(service or "", {}))
        return env


@dataclass
class _Process:
    """One child process and the last lines it printed."""

    name: str
    popen: subprocess.Popen[bytes]
    one_shot: bool  # a step that is meant to exit (0) during start-up, e.g. the topology
    log_path: Path | None = None  # where its output goes; else it is piped through the runner
    started: float = field(default_factory=time.monotonic)
    piped_tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    def last_lines(self) -> list[str]:
        if self.log_path is None:
            return list(self.piped_tail)
        with self.log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 16_384))
            return log.read().decode(errors="replace").splitlines()[-TAIL_LINES:]


class Stack:
    """Owns the processes it starts and always stops them."""

    def __init__(self, config: StackConfig, echo: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._echo = echo
        self._procs: dict[str, _Process] = {}
        self._log_files: list[IO[bytes]] = []
        self._pumps: list[threading.Thread] = []
        self._health_seen: dict[str, str] = {}

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120, cancel: threading.Event | None = None) -> None:
        """Emulator and city (at once), topology, services; returns when every ``/healthz`` answers 200.

        Raises :class:`StartupFailed` (everything stopped) when a port is taken or a setting is invalid, as
        soon as a process exits, or when a service is not healthy within ``timeout_s``;
        :class:`StartupCancelled` when ``cancel`` is set."""
        deadline = time.monotonic() + timeout_s
        self._check_ports_free()
        try:
            self._spawn("emulator", emulator_command(self.config.emulator_port), quiet=True)
            if CITY_SERVICES & set(self.config.services):
                self._spawn("city", [sys.executable, "-m", "acr_city", "prepare"], one_shot=True)
            self._check_settings()  # while the emulator starts
            self._wait(
                "the emulator answers", lambda: answers(self.config.endpoint + "/moto-api/"), deadline, cancel
            )
            self._spawn("topology", [sys.executable, "-m", "acr.topology.cli", "apply"], one_shot=True)
            self._wait("the topology is applied", lambda: "topology" not in self._procs, deadline, cancel)
            self._wait("the city is ready", lambda: "city" not in self._procs, deadline, cancel)
            for service in self.config.services:
                self.start_service(service)
            self._wait_healthy(set(self.config.services), deadline, cancel)
        except BaseException:
            self.stop(grace_s=FAILURE_GRACE_S)
            raise

    def start_service(self, service: str) -> None:
        self._spawn(service, service_command(service, self.config.ports[service]))

    def wait_healthy(self, service: str, timeout_s: float = 120) -> None:
        """Wait for one (re)started service; :class:`StartupFailed` if it exits or stays unhealthy."""
        self._wait_healthy({service}, time.monotonic() + timeout_s, None)

    def kill(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill one service (for failure tests); ``start_service`` brings it back."""
        proc = self._procs.pop(service).popen
        proc.send_signal(sig)
        proc.wait(10)

    def stop(self, grace_s: float = 8) -> None:
        """SIGTERM the services, then the emulator they talk to; SIGKILL what lingers after ``grace_s``."""
        procs = list(self._procs.values())
        deadline = time.monotonic() + grace_s
        terminate([p.popen for p in procs if p.name != "emulator"], deadline)
        terminate([p.popen for p in procs if p.name == "emulator"], max(deadline, time.monotonic() + 1))
        self._procs.clear()
        for pump in self._pumps:
            pump.join(2)
        self._pumps.clear()
        for f in self._log_files:
            f.close()
        self._log_files.clear()

    def alive(self) -> dict[str, bool]:
        return {name: proc.popen.poll() is None for name, proc in self._procs.items()}

    def exited(self) -> list[str]:
        """Reports on every long-running process that has exited (empty while all are up)."""
        return [
            exit_report(p.name, code, p.last_lines())
            for p in list(self._procs.values())
            if not p.one_shot and (code := p.popen.poll()) is not None
        ]

    # --- start-up checks -----------------------------------------------------------------------------
    def _wait(
        self, what: str, ready: Callable[[], bool], deadline: float, cancel: threading.Event | None
    ) -> None:
        """Poll `ready` until `deadline`, failing as soon as any process of the stack exits."""
        while True:
            self._check_exits()
            if ready():
                return
            if cancel is not None and cancel.is_set():
                raise StartupCancelled(f"interrupted while waiting until {what}")
            if time.monotonic() >= deadline:
                raise StartupTimedOut(f"timed out waiting until {what}")
            time.sleep(0.1)

    def _wait_healthy(self, services: set[str], deadline: float, cancel: threading.Event | None) -> None:
        pending = set(services)

        def all_healthy() -> bool:
            pending.difference_update({s for s in pending if self._healthy(s)})
            return not pending

        try:
            self._wait("every service is healthy", all_healthy, deadline, cancel)
        except StartupTimedOut:
            raise StartupTimedOut("\n".join(self._unhealthy_report(s) for s in sorted(pending))) from None

    def _check_ports_free(self) -> None:
        owners = {"emulator": self.config.emulator_port} | {
            s: self.config.ports[s] for s in self.config.services
        }
        for name, port in owners.items():
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as exc:
                    raise StartupFailed(
                        f"port {port} of {name} is taken ({exc.strerror}): is another stack running? "
                        "(acr-stack run --free-ports runs a second one)"
                    ) from None

    def _check_settings(self) -> None:
        """Validate every service's settings before starting anything (a bad value fails in a second):
        one ``python -m acr.settings`` per distinct set of ``ACR_*`` values, all at once."""
        services_by_settings: dict[frozenset[tuple[str, str]], list[str]] = {}
        for service in self.config.services:
            env = self.config.service_env(service)
            settings = frozenset((k, v) for k, v in env.items() if k.startswith("ACR_"))
            services_by_settings.setdefault(settings, []).append(service)
        checks = {
            ", ".join(services): subprocess.Popen(
                [sys.executable, "-m", "acr.settings"],
                env=self.config.service_env(services[0]),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for services in services_by_settings.values()
        }
        problems = []
        for services, check in checks.items():
            output = check.communicate(timeout=60)[0].strip()
            if check.returncode == 2:
                problems += [f"{services}: bad setting {line}" for line in output.splitlines()]
            elif check.returncode != 0:
                problems.append(exit_report("settings check", check.returncode, output.splitlines()))
        if problems:
            raise StartupFailed("\n".join(problems))

    def _check_exits(self) -> None:
        """Forget one-shot steps that succeeded; fail on any other exit."""
        for proc in list(self._procs.values()):
            code = proc.popen.poll()
            if code is None:
                continue
            if proc.one_shot and code == 0:
                del self._procs[proc.name]
                continue
            raise StartupFailed(exit_report(proc.name, code, proc.last_lines()))

    def _healthy(self, service: str) -> bool:
        seen = probe(self.config.url(service) + "/healthz", timeout_s=1)
        if seen is not None:
            self._health_seen[service] = f"/healthz {seen}"
        return seen is None

    def _unhealthy_report(self, service: str) -> str:
        proc = self._procs[service]
        seen = self._health_seen.get(service, "/healthz was not reached")
        after_s = time.monotonic() - proc.started
        state = f"running (pid {proc.popen.pid}) but not healthy {after_s:.0f} s after it started"
        return "\n".join(
            [*_indented(service, proc.last_lines()[-REPORT_LINES:]), f"{service} is {state}: {seen}"]
        )

    # --- processes -----------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], quiet: bool = False, one_shot: bool = False) -> None:
        """Start a process. With a log folder its output goes straight to ``<name>.log`` (the child never
        waits for the runner); without, it is piped through the runner, which keeps its last lines and
        echoes them with a prefix unless ``quiet``."""
        log_path = None if self.config.log_dir is None else self.config.log_dir / f"{name}.log"
        out: int | IO[bytes] = subprocess.PIPE
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out = log_path.open("ab")
            self._log_files.append(out)
        popen = subprocess.Popen(
            argv,
            env=self.config.service_env(name),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        proc = _Process(name, popen, one_shot, log_path)
        self._procs[name] = proc
        if log_path is None:
            echo = None if quiet else self._echo
            pump = threading.Thread(target=_pump, args=(proc, echo), name=f"pump-{name}", daemon=True)
            pump.start()
            self._pumps.append(pump)


def terminate(popens: list[subprocess.Popen[bytes]], deadline: float) -> None:
    """SIGTERM every process, then SIGKILL what is still running at ``deadline`` (``time.monotonic``)."""
    for popen in popens:
        if popen.poll() is None:
            popen.terminate()
    for popen in popens:
        try:
            popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)


def _pump(proc: _Process, echo: Callable[[str], None] | None) -> None:
    """Copy a child's piped output line by line into its tail and (with a prefix) the echo."""
    assert proc.popen.stdout is not None
    prefix = f"{proc.name:>14} | "
    for raw in iter(proc.popen.stdout.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        proc.piped_tail.append(line)
        if echo is not None:
            echo(prefix + line)


def exit_report(name: str, code: int, lines: list[str]) -> str:
    """The last lines of an exited process, then one line: its name, exit code and error."""
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    error = next((line.strip() for line in reversed(lines) if _EXCEPTION_LINE.match(line.strip())), None)
    last = f"{name} {how}" + (f": {error}" if error else "")
    return "\n".join([*_indented(name, lines[-REPORT_LINES:]), last])


def _indented(name: str, lines: list[str]) -> list[str]:
    return [f"  {name} | {line}" for line in lines]


def service_command(service: str, port: int) -> list[str]:
    """How every service runs, here and in its container: its app factory, served by uvicorn."""
    return [sys.executable, "-m", "acr.serve", service, "--host", "127.0.0.1", "--port", str(port)]


def emulator_command(port: int, module: str = EMULATOR_MODULE, *options: str) -> list[str]:
    """The command line of the embedded emulator (or, with ``module="moto.server"``, of plain moto)."""
    return [sys.executable, "-m", module, *options, "-H", "127.0.0.1", "-p", str(port)]


def probe(url: str, timeout_s: float = 2) -> str | None:
    """None when ``url`` answers 200, else what it answered (status and body) or why it did not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback only
            return None if response.status == 200 else f"answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"answered {exc.code}: {exc.read(2000).decode(errors='replace').strip()}"
    except OSError as exc:
        return f"does not answer yet ({getattr(exc, 'reason', exc)})"


def answers(url: str) -> bool:
    return probe(url) is None


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, failed: Callable[[], bool] = lambda: False
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if failed():
            raise RuntimeError(f"{what} exited during start-up")
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
