"""``acr-stack run``: the whole ACR stack on this machine, on the fixed ports, until Ctrl-C. A service that
exits is restarted (with a log line); with ``ACR_CHAOS=1`` the services reach the emulator through the
fault proxy, whose outages the BFF's ``/ops/chaos`` opens; with ``ACR_REPLICAS`` a service runs as several
processes behind its usual port. The stack runs with this checkout's random secrets (``.run/secrets.env``,
made on the first run), unless the environment sets them. ``acr-stack secrets --env-file .env`` writes
random secrets into a ``docker compose`` env file, ``acr-stack keys --env-file .env`` a fresh key pair per
service."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from acr.settings import SERVICE_PORTS
from acr_stack.accounts import layout, plans
from acr_stack.keys import ServiceKeys, write_env_file
from acr_stack.runner import Stack, StackConfig, StartupCancelled, StartupFailed
from acr_stack.secrets import CHECKOUT_SECRETS, SECRET_VARIABLES, checkout_secrets, ensure_secrets, overridden

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
    parser.add_argument(
        "command", choices=["run", "secrets", "keys"], help="run the stack, or write secrets or service keys"
    )
    parser.add_argument(
        "--env-file", type=Path, default=Path(".env"), help="secrets, keys: the env file to write to (.env)"
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for health")
    parser.add_argument(
        "--free-ports", action="store_true", help="free ports instead of 4566 and 8000-8007 (a second stack)"
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        type=_service_setting,
        metavar="SERVICE:NAME=VALUE",
        help="a setting for one service only (repeatable), e.g. car-simulator:ACR_SIM_SPEED=10",
    )
    args = parser.parse_args(argv)
    if args.command == "secrets":
        return _write_secrets(args.env_file)
    if args.command == "keys":
        return _write_keys(args.env_file)

    stop = threading.Event()

    def _on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    started = time.monotonic()
    overrides: dict[str, dict[str, str]] = {}
    for service, name, value in args.service_env:
        overrides.setdefault(service, {})[name] = value
    try:
        config = (StackConfig.free if args.free_ports else StackConfig.fixed)(
            service_env_overrides=overrides, secrets=checkout_secrets()
        )
    except StartupFailed as failure:
        _say("start-up failed; nothing was started. What failed:")
        _say(str(failure), error=True)
        return 1
    stack = Stack(config, echo=lambda line: print(line, flush=True))  # noqa: T201
    _say(
        f"==> starting the moto emulator on :{config.emulator_port} and preparing the city "
        f"({os.environ.get('ACR_CITY', 'small')}; built once on the first run), then the topology and "
        f"{len(config.services)} services"
        + (f" ({len(config.processes)} processes)" if config.replicated else "")
    )
    threading.Thread(target=_watch_make, args=(stop,), daemon=True).start()
    try:
        stack.start(args.timeout, cancel=stop)
    except StartupCancelled:
        _say("interrupted during start-up; every process is stopped.")
        return 130
    except StartupFailed as failure:
        _say(f"start-up failed after {time.monotonic() - started:.1f} s; the stack is stopped. What failed:")
        _say(str(failure), error=True)
        return 1
    _banner(stack, time.monotonic() - started)
    exited: list[str] = []
    try:
        while not stop.wait(1.0) and not (exited := stack.exited()):
            pass
    finally:
        _say("stopping the stack...")
        stack.stop()
        _say("stopped.")
    if exited:
        _say("the stack was stopped because a process exited:")
        _say("\n".join(exited), error=True)
        return 1
    return 0


def _write_secrets(env_file: Path) -> int:
    """``acr-stack secrets``: random secrets for those ``env_file`` lacks (the others are kept)."""
    _, added = ensure_secrets(env_file)
    kept = [name for name in SECRET_VARIABLES if name not in added]
    _say(
        f"{env_file} (mode 0600): "
        + ", ".join([*(f"{name} new" for name in added), *(f"{name} kept" for name in kept)])
    )
    return 0


def _write_keys(env_file: Path) -> int:
    """A fresh key pair per service, in the env file docker compose reads (its other lines kept)."""
    write_env_file(env_file, ServiceKeys.generate())
    _say(f"wrote a new key pair per service to {env_file} (mode 0600); restart every service to use them")
    return 0


def _service_setting(text: str) -> tuple[str, str, str]:
    service, _, setting = text.partition(":")
    name, eq, value = setting.partition("=")
    if service not in SERVICE_PORTS or not eq or not name.startswith("ACR_"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SERVICE:ACR_NAME=VALUE with SERVICE one of {list(SERVICE_PORTS)}"
        )
    return service, name, value


def _say(text: str, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout, flush=True)  # noqa: T201


def _banner(stack: Stack, elapsed: float) -> None:
    bff = stack.config.url("bff")
    lines = [
        "",
        f"ACR is up in {elapsed:.1f} s",
        f"  rider app      {bff}/",
        f"  ops dashboard  {bff}/dashboard   (it asks for ACR_OPS_TOKEN)",
        f"  secrets        {_secrets_line()}",
        f"  API docs       {bff}/docs",
        *(f"  {name:<14} {stack.config.url(name)}/docs" for name in stack.config.services if name != "bff"),
        f"  AWS emulator   {stack.config.endpoint}",
        *_chaos_lines(stack),
        *_replica_lines(stack),
        *_account_lines(stack),
        "A service that exits is restarted. Ctrl-C stops everything.",
        "",
    ]
    _say("\n".join(lines))


def _secrets_line() -> str:
    """Where the stack's secrets are (never their values)."""
    from_env = overridden()
    from_file = [name for name in SECRET_VARIABLES if name not in from_env]
    where = [f"{', '.join(from_file)} in {CHECKOUT_SECRETS.resolve()}"] if from_file else []
    return "; ".join(where + ([f"{', '.join(from_env)} from the environment"] if from_env else []))


def _replica_lines(stack: Stack) -> list[str]:
    """Every process of each service run as several replicas (the entry point is the URL above)."""
    replicated = stack.config.replicated
    if not replicated:
        return []
    pids = stack.pids()
    listed = stack.config.url("bff") + "/ops/replicas"
    lines = [f"  replicas       (round robin behind each service's URL; listed at {listed})"]
    lines += [
        f"    {service:<14} {r.name:<18} :{r.port:<6} pid {pids.get(r.name, '-')}"
        for service, replicas in replicated.items()
        for r in replicas
    ]
    return lines


def _account_lines(stack: Stack) -> list[str]:
    """With ``ACR_ACCOUNTS=multi``: the account of each context (``x-moto-account-id`` reaches it)."""
    if not stack.config.multi_account:
        return []
    lines = ["  accounts       (one per context, its stack deployed by CloudFormation; docs/deploy.md)"]
    return lines + [f"    {context:<14} {account}" for context, account in layout(plans()).items()]


def _chaos_lines(stack: Stack) -> list[str]:
    if not stack.config.chaos:
        return []
    controls = stack.config.url("bff") + "/ops/chaos"
    return [f"  fault proxy    {stack.config.control_url}   (ACR_CHAOS on: outages from {controls})"]


if __name__ == "__main__":
    raise SystemExit(main())
