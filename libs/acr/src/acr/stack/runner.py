"""Start, watch and stop the embedded stack (used by ``make run`` and the system tests)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from acr.settings import SERVICE_PORTS

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Child processes get SIGTERM if the runner dies, so nothing is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class StackConfig:
    """Ports, settings and where the logs go. ``fixed()`` is ``make run``; ``free()`` is for tests."""

    emulator_port: int
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    services: tuple[str, ...] = tuple(SERVICE_PORTS)

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

    def service_env(self) -> dict[str, str]:
        """The environment every process of the stack gets."""
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
        return env


class Stack:
    """Owns the processes it starts and always stops them."""

    def __init__(self, config: StackConfig, echo: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._echo = echo
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self._pumps: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120) -> None:
        """Emulator, topology, services; returns when every ``/healthz`` answers 200."""
        try:
            self._spawn(
                "emulator",
                [
                    sys.executable,
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(self.config.emulator_port),
                ],
                quiet=True,
            )
            wait_until(lambda: answers(self.config.endpoint + "/moto-api/"), timeout_s, "emulator")
            subprocess.run(
                [sys.executable, "-m", "acr.topology.cli", "apply"],
                env=self.config.service_env(),
                check=True,
                timeout=timeout_s,
            )
            for service in self.config.services:
                self.start_service(service)
            for service in self.config.services:
                self.wait_healthy(service, timeout_s)
        except BaseException:
            self.stop()
            raise

    def start_service(self, service: str) -> None:
        module = service.replace("-", "_")
        self._spawn(
            service,
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{module}.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.config.ports[service]),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "3",
            ],
        )

    def wait_healthy(self, service: str, timeout_s: float = 120) -> None:
        proc = self._procs[service]
        wait_until(
            lambda: proc.poll() is None and answers(self.config.url(service) + "/healthz"),
            timeout_s,
            service,
            lambda: proc.poll() is not None,
        )

    def kill(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill one service (for failure tests); ``start_service`` brings it back."""
        proc = self._procs.pop(service)
        proc.send_signal(sig)
        proc.wait(10)

    def stop(self, grace_s: float = 8) -> None:
        """SIGTERM everything (services first, emulator last), SIGKILL what lingers."""
        order = [s for s in self._procs if s != "emulator"] + (
            ["emulator"] if "emulator" in self._procs else []
        )
        for name in order:
            if self._procs[name].poll() is None:
                self._procs[name].terminate()
        deadline = time.monotonic() + grace_s
        for name in order:
            proc = self._procs[name]
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._procs.clear()
        for pump in self._pumps:
            pump.join(2)
        for f in self._log_files:
            f.close()
        self._log_files.clear()

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self._procs.items()}

    # --- processes -----------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], quiet: bool = False) -> None:
        out: int | IO[bytes]
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            log_file = (self.config.log_dir / f"{name}.log").open("ab")
            self._log_files.append(log_file)
            out = log_file
        elif quiet or self._echo is None:
            out = subprocess.DEVNULL
        else:
            out = subprocess.PIPE
        proc = subprocess.Popen(
            argv,
            env=self.config.service_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._procs[name] = proc
        if out is subprocess.PIPE and proc.stdout is not None and self._echo is not None:
            pump = threading.Thread(target=_pump, args=(name, proc.stdout, self._echo), daemon=True)
            pump.start()
            self._pumps.append(pump)


def _pump(name: str, stream: IO[bytes], echo: Callable[[str], None]) -> None:
    prefix = f"{name:>14} | "
    for raw in iter(stream.readline, b""):
        echo(prefix + raw.decode(errors="replace").rstrip())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False


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
