"""``acr-stack run``: the whole ACR stack on this machine, on the fixed ports, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from acr.stack.runner import Stack, StackConfig

SIGINT_BIT = 1 << (signal.SIGINT - 1)


def _make_ancestor() -> int | None:
    """The pid of the ``make`` that started us, if any."""
    pid = os.getppid()
    for _ in range(6):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Name", "").strip() == "make":
            return pid
        pid = int(fields.get("PPid", "0").strip() or 0)
        if pid <= 1:
            return None
    return None


def _make_interrupted(pid: int) -> bool:
    """GNU make resets its SIGINT handler to the default when it is interrupted, then waits for its
    children: so a ``kill -INT <make>`` (not only Ctrl-C on the terminal) stops the stack too."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return not int(line.split()[1], 16) & SIGINT_BIT
    return False


def _watch_make(stop: threading.Event) -> None:
    pid = _make_ancestor()
    if pid is None or _make_interrupted(pid):
        return
    while not stop.wait(0.5):
        if _make_interrupted(pid):
            stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acr-stack", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for health")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    started = time.monotonic()
    stack = Stack(StackConfig.fixed(), echo=lambda line: print(line, flush=True))  # noqa: T201
    print("starting the moto emulator on :4566, the topology and 8 services...", flush=True)  # noqa: T201
    try:
        stack.start(args.timeout)
        _banner(stack, time.monotonic() - started)
        threading.Thread(target=_watch_make, args=(stop,), daemon=True).start()
        while not stop.wait(1.0):
            dead = [name for name, up in stack.alive().items() if not up]
            if dead:
                print(f"stopping: {', '.join(dead)} exited", file=sys.stderr, flush=True)  # noqa: T201
                return 1
        return 0
    except (TimeoutError, RuntimeError) as exc:
        print(f"start-up failed: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        return 1
    finally:
        print("stopping the stack...", flush=True)  # noqa: T201
        stack.stop()
        print("stopped.", flush=True)  # noqa: T201


def _banner(stack: Stack, elapsed: float) -> None:
    bff = stack.config.url("bff")
    ops_token = stack.config.service_env().get("ACR_OPS_TOKEN", "dev-ops-token")
    lines = [
        "",
        f"ACR is up in {elapsed:.1f} s",
        f"  rider app      {bff}/",
        f"  ops dashboard  {bff}/dashboard   (X-Ops-Token: {ops_token})",
        f"  API docs       {bff}/docs",
        *(f"  {name:<14} {stack.config.url(name)}/docs" for name in stack.config.services if name != "bff"),
        f"  AWS emulator   {stack.config.endpoint}",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201


if __name__ == "__main__":
    raise SystemExit(main())
