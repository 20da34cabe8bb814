"""Run what ``docker-compose.yml`` describes as host processes, to prove its wiring without Docker.

Three steps, each a function of the one before:

1. :func:`containers`: what Docker would run for each compose service, in container terms. For a
   service built from the Dockerfile, the image's ``ENV``, ``CMD``, ``ENTRYPOINT``, ``HEALTHCHECK``,
   ``WORKDIR`` and user (for the service's build target and build args, see ``docker_model.py``), under
   what the compose file sets (``environment``, ``command``, ``entrypoint``, ``healthcheck``, ``ports``,
   ``volumes``, ``depends_on``). The compose file is interpolated with no variable set: its defaults.
2. :func:`host_plan`: the same on this machine. Every ``(hostname, container port)`` a container
   listens on gets a free loopback port; every value that names a compose hostname (or the container
   itself: ``localhost``) with a port is rewritten to that loopback port, and one naming an address where
   no container listens to a port where nothing listens (and is reported in ``problems``); acr.serve's
   listen address (``--host``/``--port``, ``ACR_HOST``/``ACR_PORT``) becomes ``127.0.0.1`` and the
   loopback port; container paths become host folders (the image's venv ``/app/.venv`` is this
   workspace's venv, each named volume one temporary folder shared by the containers that mount it, each
   container's home its own temporary folder). Nothing else changes: each process gets only the image's and
   compose's environment, not this process's; a setting compose leaves unset keeps its default, and a
   default that names ``127.0.0.1`` (in a container: the container itself) is moved the same way
   (:func:`loopback_defaults`). LocalStack, which has no Python equivalent here, is stood in for by the
   embedded moto emulator (``acr_stack.runner.emulator_command``) on its loopback port.
3. :class:`HostStack`: starts the processes in ``depends_on`` order (``service_started``,
   ``service_healthy``, ``service_completed_successfully``), runs each health check command as Docker
   would (once the container's port accepts connections; soon at first, then at most every interval),
   fails as soon as a process exits that should not, logs every process to ``<log_dir>/<name>.log`` and
   always stops everything it started. While it runs, it also watches the services' outgoing loopback
   connections: one to a port of no container here means a service reached something outside this stack.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from unittest import mock

import psutil
from docker_model import (
    HealthCheck,
    Image,
    build_of,
    container_port,
    environment,
    image,
    load_compose,
    seconds,
)

from acr.settings import Settings
from acr_stack.runner import emulator_command, exit_report, free_port, probe, terminate

LOOPBACK = "127.0.0.1"
OWN_NAMES = {"localhost", "127.0.0.1", "0.0.0.0"}  # inside a container: the container itself
ANY_ADDRESS = {"0.0.0.0", "::", ""}
IMAGE_VENV = "/app/.venv"
LOCALSTACK_IMAGE = "localstack/localstack"
LOCALSTACK_PORT = 4566  # where LocalStack's gateway listens inside its container
SERVE = "acr.serve"
SERVE_VARIABLES = {"ACR_SERVICE", "ACR_PORT", "ACR_HOST"}  # read by acr.serve (libs/acr/src/acr/serve.py)
UNSUPPORTED = {"env_file", "network_mode", "networks", "hostname", "extra_hosts", "links", "profiles"}
ADDRESS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)?(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d{1,5})\b")
URL_HOST = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>[A-Za-z0-9_-]+)(?P<rest>[/?#]|$)")
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class StartFailed(RuntimeError):
    """A process exited that should not have, or the stack was not up in time."""


# --------------------------------------------------------------------------- 1. containers


@dataclass
class Container:
    """One compose service as Docker would run it (container paths, container ports)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: str
    home: str
    healthcheck: HealthCheck | None
    depends_on: dict[str, str]
    published: list[tuple[int | None, int]]
    volumes: dict[str, str]  # container path -> "volume:<name>" or a host path
    listen: set[tuple[str, int]]  # (address, container port)
    localstack: bool = False


def containers(compose_file: Path) -> dict[str, Container]:
    compose = load_compose(compose_file)
    return {name: _container(name, spec, compose_file.parent) for name, spec in compose["services"].items()}


def _container(name: str, spec: Mapping[str, Any], compose_dir: Path) -> Container:
    unsupported = UNSUPPORTED & set(spec)
    if unsupported:
        raise NotImplementedError(f"{name}: the wiring test does not emulate {sorted(unsupported)}")
    built, localstack = _image_of(name, spec, compose_dir)
    env = {**built.env, **environment(spec)}
    argv = _argv(spec, built)
    user = str(spec.get("user", built.user)).split(":")[0]
    container = Container(
        name=name,
        argv=argv,
        env=env,
        workdir=str(spec.get("working_dir", built.workdir)),
        home=built.homes.get(user, "/"),
        healthcheck=_healthcheck(spec.get("healthcheck"), built.healthcheck),
        depends_on=_depends_on(spec.get("depends_on")),
        published=[container_port(p) for p in spec.get("ports") or []],
        volumes=dict(_volume(v, compose_dir) for v in spec.get("volumes") or []),
        listen=set(),
        localstack=localstack,
    )
    container.listen = _listen(container, built, spec)
    return container


def _image_of(name: str, spec: Mapping[str, Any], compose_dir: Path) -> tuple[Image, bool]:
    if "build" in spec:
        dockerfile, target, args = build_of(spec, compose_dir)
        return image(dockerfile, target, args), False
    if str(spec.get("image", "")).startswith(LOCALSTACK_IMAGE + ":"):
        return Image(), True
    raise NotImplementedError(f"{name}: no stand-in for the image {spec.get('image')!r}")


def _words(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _argv(spec: Mapping[str, Any], built: Image) -> list[str]:
    """Compose's rule: ``entrypoint`` replaces the image's and drops its CMD; ``command`` replaces CMD."""
    entrypoint = _words(spec["entrypoint"]) if "entrypoint" in spec else built.entrypoint
    default_cmd = [] if "entrypoint" in spec else built.cmd
    return entrypoint + (_words(spec["command"]) if "command" in spec else default_cmd)


def _healthcheck(spec: Mapping[str, Any] | None, from_image: HealthCheck | None) -> HealthCheck | None:
    if not spec:
        return from_image
    if spec.get("disable"):
        return None
    test = spec.get("test")
    if test is None:
        argv = from_image.argv if from_image else None
    elif isinstance(test, str):
        argv = ["/bin/sh", "-c", test]
    elif test[0] == "NONE":
        return None
    else:
        argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])
    if argv is None:
        return None
    base = from_image or HealthCheck(argv)
    check = HealthCheck(argv, base.interval_s, base.timeout_s, base.start_period_s, base.retries)
    for key in ("interval", "timeout", "start_period"):
        if key in spec:
            setattr(check, f"{key}_s", seconds(spec[key]))
    check.retries = int(spec.get("retries", check.retries))
    return check


def _depends_on(spec: list[str] | Mapping[str, Any] | None) -> dict[str, str]:
    if not spec:
        return {}
    if isinstance(spec, list):
        return dict.fromkeys(spec, "service_started")
    return {name: (dep or {}).get("condition", "service_started") for name, dep in spec.items()}


def _volume(spec: str | Mapping[str, Any], compose_dir: Path) -> tuple[str, str]:
    if isinstance(spec, Mapping):
        source, target = str(spec.get("source", "")), str(spec["target"])
    else:
        source, target = str(spec).split(":")[:2]
    if source.startswith((".", "/", "~")):
        return target, str((compose_dir / Path(source).expanduser()).resolve())
    return target, f"volume:{source}"


def _listen(container: Container, built: Image, spec: Mapping[str, Any]) -> set[tuple[str, int]]:
    """Where the container's process listens: LocalStack's gateway; acr.serve's own rule; else EXPOSE."""
    if container.localstack:
        return {("0.0.0.0", LOCALSTACK_PORT)}
    served = serve_address(container.argv, container.env)
    if served is not None:
        return {served}
    exposed = built.exposed | {int(str(p).split("/")[0]) for p in spec.get("expose") or []}
    return {("0.0.0.0", port) for port in exposed}


def serve_address(argv: list[str], env: Mapping[str, str]) -> tuple[str, int] | None:
    """(host, port) ``python -m acr.serve ...`` listens on, by acr.serve's own argument parser in ``env``;
    None for another command, or one acr.serve would refuse (it exits at once, which the test reports)."""
    if SERVE not in argv or argv[argv.index(SERVE) - 1] != "-m" or "--probe" in argv:
        return None
    from acr.serve import _arguments

    try:
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(io.StringIO()):
            args = _arguments(argv[argv.index(SERVE) + 1 :])
    except (SystemExit, ValueError):
        return None
    return str(args.host), int(args.port)


# --------------------------------------------------------------------------- 2. the host plan


@dataclass
class HostProcess:
    """One container as a process on this machine."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    healthcheck: HealthCheck | None
    depends_on: dict[str, str]
    ports: dict[int, int]  # container port -> loopback port it listens on here
    stand_in: bool = False  # LocalStack, stood in for by the embedded emulator


@dataclass
class HostPlan:
    processes: dict[str, HostProcess]
    addresses: dict[tuple[str, int], int]  # (compose hostname, container port) -> loopback port
    dead_port: int  # where every address that no container listens on goes
    problems: list[str] = field(default_factory=list)

    def published(self, service: str, container: Container) -> str:
        """The loopback URL of the first port the service publishes (``ports:``)."""
        target = container.published[0][1]
        return f"http://{LOOPBACK}:{self.addresses.get((service, target), self.dead_port)}"

    def describe(self) -> str:
        lines = [f"dead port (nothing listens): {self.dead_port}"]
        for (host, port), local in sorted(self.addresses.items()):
            lines.append(f"{host}:{port} -> {LOOPBACK}:{local}")
        for process in self.processes.values():
            lines += ["", f"[{process.name}] cwd={process.cwd}", "  argv: " + shlex.join(process.argv)]
            if process.healthcheck:
                lines.append("  health: " + shlex.join(process.healthcheck.argv))
            lines += [f"  {k}={v}" for k, v in sorted(process.env.items())]
        return "\n".join(lines + ["", "problems:", *self.problems])


def host_plan(found: Mapping[str, Container], scratch: Path, dead_port: int) -> HostPlan:
    addresses = {(c.name, port): free_port() for c in found.values() for _, port in sorted(c.listen)}
    plan = HostPlan({}, addresses, dead_port)
    for container in found.values():
        plan.processes[container.name] = _Rewriter(container, found, plan, scratch).process()
    _check_names(found, plan)
    return plan


def loopback_defaults() -> dict[str, str]:
    """The ``ACR_*`` settings whose default names the loopback interface (``ACR_RIDE_MANAGER_URL``:
    ``http://127.0.0.1:8001``). In a container that is the container itself; here it would be this machine,
    where a ``make run`` stack may listen on those ports, so a setting compose leaves unset (or misspells)
    is given its default moved like any other address: to where nothing listens, as in Docker."""
    found = {}
    for name, spec in Settings.model_fields.items():
        default = "" if spec.default is None else str(spec.default)
        if any(m.group("host") in OWN_NAMES for m in ADDRESS.finditer(default)):
            found[f"ACR_{name.upper()}"] = default
    return found


def _check_names(found: Mapping[str, Container], plan: HostPlan) -> None:
    """pydantic-settings ignores an unknown ``ACR_*`` name: a misspelt setting silently keeps its default."""
    known = {f"ACR_{name.upper()}" for name in Settings.model_fields} | SERVE_VARIABLES
    for container in found.values():
        if container.localstack:
            continue
        for name in sorted(k for k in container.env if k.startswith("ACR_") and k not in known):
            plan.problems.append(f"{container.name}: {name} is no setting (libs/acr/src/acr/settings.py)")


class _Rewriter:
    """Rewrites one container's command, environment and health check for this machine."""

    def __init__(self, container: Container, found: Mapping[str, Container], plan: HostPlan, scratch: Path):
        self.c, self.found, self.plan = container, found, plan
        own = scratch / "containers" / container.name
        mounts = {
            target: scratch / "volumes" / source.removeprefix("volume:")
            if source.startswith("volume:")
            else Path(source)
            for target, source in container.volumes.items()
        }
        self.paths = {IMAGE_VENV: Path(sys.prefix), **mounts, container.home: own / "home"}
        if not any(_under(container.workdir, p) for p in self.paths):
            self.paths[container.workdir] = own / "workdir"

    def process(self) -> HostProcess:
        c = self.c
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        ports = {port: self.plan.addresses[(c.name, port)] for _, port in c.listen}
        for host, port in c.listen:
            if host not in ANY_ADDRESS:
                self.plan.problems.append(
                    f"{c.name} listens on {host}:{port} only: no other container can reach it"
                )
        if c.localstack:  # the embedded emulator needs nothing of LocalStack's environment
            env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.path(c.home)), "LANG": "C.UTF-8"}
            health = _answers(ports[LOCALSTACK_PORT], "/moto-api/")
            argv = emulator_command(ports[LOCALSTACK_PORT])
            return HostProcess(
                c.name, argv, env, self.path(c.workdir), health, c.depends_on, ports, stand_in=True
            )
        env = {key: self.value(key, value) for key, value in c.env.items()}
        for key, default in loopback_defaults().items():
            if key not in env:  # unset: the default's 127.0.0.1 is the container itself
                env[key] = self.addresses_in(default, key, report=False)
        env.setdefault("HOME", str(self.path(c.home)))
        argv = self.argv(c.argv)
        if serve_address(c.argv, c.env) is not None and "--port" not in c.argv:
            env["ACR_PORT"] = str(ports[next(iter(c.listen))[1]])  # acr.serve's default port, moved
        health = c.healthcheck
        if health is not None:
            health = dataclasses.replace(health, argv=_resolved(self.argv(health.argv), env))
        cwd = self.path(c.workdir)
        return HostProcess(c.name, _resolved(argv, env), env, cwd, health, c.depends_on, ports)

    # --- values ------------------------------------------------------------------------------------------
    def value(self, key: str, value: str) -> str:
        if key == "ACR_HOST":
            return LOOPBACK
        if key == "ACR_PORT" and value.isdigit():
            return str(self.address(self.c.name, int(value), key))
        if value.startswith("/"):
            return ":".join(str(self.path(p)) if p.startswith("/") else p for p in value.split(":"))
        return self.addresses_in(value, key)

    def argv(self, argv: list[str]) -> list[str]:
        out = []
        for i, word in enumerate(argv):
            before = argv[i - 1] if i else ""
            if before == "--port" and word.isdigit():
                out.append(str(self.address(self.c.name, int(word), "--port")))
            elif before == "--host":
                out.append(LOOPBACK)
            elif word.startswith("/"):
                out.append(str(self.path(word)))
            else:
                out.append(self.addresses_in(word, "the command"))
        return out

    def path(self, path: str) -> Path:
        for prefix in sorted(self.paths, key=len, reverse=True):
            if _under(path, prefix):
                return self.paths[prefix] / os.path.relpath(path, prefix)
        return Path(path)

    def addresses_in(self, text: str, where: str, report: bool = True) -> str:
        """Every ``host:port`` (or ``scheme://host[:port]``) that names a container, moved to loopback."""

        def moved(match: re.Match[str]) -> str:
            host = match.group("host")
            if host not in self.found and host not in OWN_NAMES:
                if "." not in host and match.group("scheme"):
                    self.plan.problems.append(f"{self.c.name}: {where} names {host!r}, no compose service")
                    return f"{match.group('scheme')}{LOOPBACK}:{self.plan.dead_port}"
                return match.group(0)
            target = self.c.name if host in OWN_NAMES else host
            port = self.address(target, int(match.group("port")), where, report)
            return f"{match.group('scheme') or ''}{LOOPBACK}:{port}"

        text = URL_HOST.sub(lambda m: self._default_port(m), text)
        return ADDRESS.sub(moved, text)

    def _default_port(self, match: re.Match[str]) -> str:
        """``http://ride-manager/x`` means port 80: make it explicit, so it is moved like the others."""
        port = DEFAULT_PORTS.get(match.group("scheme"))
        if port is None:
            return match.group(0)
        return f"{match.group('scheme')}://{match.group('host')}:{port}{match.group('rest')}"

    def address(self, host: str, port: int, where: str, report: bool = True) -> int:
        local = self.plan.addresses.get((host, port))
        if local is None and report:
            listening = sorted(p for h, p in self.plan.addresses if h == host)
            self.plan.problems.append(
                f"{self.c.name}: {where} names {host}:{port}, where nothing listens "
                f"({host} listens on {listening or 'no port'})"
            )
        return self.plan.dead_port if local is None else local


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _resolved(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """argv[0] found on the process's own PATH, as the container's runtime does."""
    if not argv or "/" in argv[0]:
        return argv
    found = shutil.which(argv[0], path=env.get("PATH", ""))
    return [found or argv[0], *argv[1:]]


def _answers(port: int, path: str) -> HealthCheck:
    probe = f"import urllib.request; urllib.request.urlopen('http://{LOOPBACK}:{port}{path}', timeout=4)"
    return HealthCheck([sys.executable, "-c", probe], interval_s=1, timeout_s=5)


# --------------------------------------------------------------------------- 3. the processes


def _die_with_parent() -> None:
    """Children get SIGTERM if the test process dies, so nothing is orphaned."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Running:
    process: HostProcess
    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path
    one_shot: bool
    last_probe: float = 0.0
    probes: int = 0


class HostStack:
    """Starts a :class:`HostPlan`'s processes in ``depends_on`` order, and always stops them."""

    def __init__(self, plan: HostPlan, log_dir: Path) -> None:
        self.plan, self.log_dir = plan, log_dir
        self.running: dict[str, _Running] = {}
        self.healthy: set[str] = set()
        self.completed: set[str] = set()
        self.strays: set[str] = set()
        self._one_shots = {
            dep for p in plan.processes.values() for dep, cond in p.depends_on.items()
            if cond == "service_completed_successfully"
        }  # fmt: skip
        self._stop_watch = threading.Event()
        self._watch = threading.Thread(target=self._watch_connections, name="wiring-watch", daemon=True)

    def __enter__(self) -> HostStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / "plan.txt").write_text(self.plan.describe() + "\n")
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- start ---------------------------------------------------------------------------------------
    def start(self, timeout_s: float) -> None:
        """Returns once every process with a health check is healthy and every one-shot job has succeeded."""
        deadline = time.monotonic() + timeout_s
        self._watch.start()
        while not self._up():
            self._check_exits()
            for name in sorted(set(self.plan.processes) - set(self.running)):
                if self._may_start(self.plan.processes[name]):
                    self._spawn(self.plan.processes[name])
            self._probe_health()
            if time.monotonic() > deadline:
                raise StartFailed(f"not up after {timeout_s:.0f} s:\n{self._waiting_for()}")
            time.sleep(0.2)

    def _up(self) -> bool:
        if set(self.running) != set(self.plan.processes):
            return False
        for name, run in self.running.items():
            if run.one_shot and name not in self.completed:
                return False
            if not run.one_shot and run.process.healthcheck is not None and name not in self.healthy:
                return False
        return True

    def _may_start(self, process: HostProcess) -> bool:
        satisfied = {
            "service_started": lambda dep: dep in self.running,
            "service_healthy": lambda dep: dep in self.healthy,
            "service_completed_successfully": lambda dep: dep in self.completed,
        }
        return all(satisfied[cond](dep) for dep, cond in process.depends_on.items())

    def _spawn(self, process: HostProcess) -> None:
        log_path = self.log_dir / f"{process.name}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(
            process.argv,
            env=process.env,
            cwd=process.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        one_shot = process.name in self._one_shots
        self.running[process.name] = _Running(process, popen, log, log_path, one_shot)

    def _check_exits(self) -> None:
        for name, run in self.running.items():
            code = run.popen.poll()
            if code is None or name in self.completed:
                continue
            if run.one_shot and code == 0:
                self.completed.add(name)
                continue
            raise StartFailed(exit_report(name, code, self.last_lines(name)))

    def _probe_health(self) -> None:
        """Each health check command, as Docker runs it, once the container's port takes connections."""
        for name, run in self.running.items():
            check = run.process.healthcheck
            if check is None or name in self.healthy or run.one_shot:
                continue
            pause = min(check.interval_s, 0.5 * (run.probes + 1))  # soon at first, then Docker's interval
            if time.monotonic() - run.last_probe < pause or not self._accepts(run.process):
                continue
            run.last_probe, run.probes = time.monotonic(), run.probes + 1
            if self._run_check(run, check):
                self.healthy.add(name)

    def _run_check(self, run: _Running, check: HealthCheck) -> bool:
        with (self.log_dir / f"{run.process.name}.health.log").open("ab") as out:
            try:
                result = subprocess.run(
                    check.argv, env=run.process.env, cwd=run.process.cwd, stdout=out,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=check.timeout_s, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                return False
            out.write(f"-- health check {run.probes}: exit {result.returncode}\n".encode())
        return result.returncode == 0

    @staticmethod
    def _accepts(process: HostProcess) -> bool:
        if not process.ports:
            return True
        for port in process.ports.values():
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        return False

    def _waiting_for(self) -> str:
        lines = []
        for name, process in self.plan.processes.items():
            run = self.running.get(name)
            if run is None:
                lines.append(f"{name}: not started, waiting for {process.depends_on}")
            elif not run.one_shot and process.healthcheck is not None and name not in self.healthy:
                health = self.log_dir / f"{name}.health.log"
                tail = health.read_text(errors="replace").splitlines()[-6:] if health.exists() else []
                lines += [f"{name}: running, not healthy after {run.probes} health checks", *tail]
                for port in process.ports.values():
                    answer = probe(f"http://{LOOPBACK}:{port}/healthz") or "200"
                    lines.append(f"  its /healthz: {answer}")
                lines += [f"  {name} | {line}" for line in self.last_lines(name)[-8:]]
        return "\n".join(lines)

    # --- while it runs -------------------------------------------------------------------------------
    def _watch_connections(self) -> None:
        """Outgoing loopback connections of the services to a port no container of this stack listens on."""
        ours = set(self.plan.addresses.values())
        while not self._stop_watch.wait(0.5):
            for name, run in list(self.running.items()):
                if run.process.stand_in or run.popen.poll() is not None:
                    continue
                with contextlib.suppress(psutil.Error):
                    for conn in psutil.Process(run.popen.pid).net_connections(kind="tcp"):
                        if not conn.raddr or not conn.raddr.ip.startswith("127."):
                            continue
                        if conn.laddr.port in run.process.ports.values():
                            continue  # a connection it accepted
                        if conn.raddr.port not in ours:
                            self.strays.add(f"{name} connected to {conn.raddr.ip}:{conn.raddr.port}")

    def last_lines(self, name: str, count: int = 40) -> list[str]:
        run = self.running.get(name)
        if run is None or not run.log_path.exists():
            return []
        run.log.flush()
        return run.log_path.read_text(errors="replace").splitlines()[-count:]

    def report(self) -> str:
        """For a failure: compose's problems, stray connections, each process's state and last lines."""
        lines = [f"logs and the host plan: {self.log_dir}"]
        lines += ["compose problems:", *(f"  {p}" for p in self.plan.problems or ["none"])]
        lines += ["connections outside this stack:", *(f"  {s}" for s in sorted(self.strays) or ["none"])]
        for name, run in self.running.items():
            code = run.popen.poll()
            state = "running" if code is None else f"exited {code}"
            health = " healthy" if name in self.healthy else ""
            lines.append(f"{name}: {state}{health}")
            lines += [f"  {name} | {line}" for line in self.last_lines(name, 6)]
        return "\n".join(lines)

    # --- stop ----------------------------------------------------------------------------------------
    def stop(self, grace_s: float = 8) -> None:
        """SIGTERM the services, then the emulator they talk to; SIGKILL what lingers after ``grace_s``."""
        self._stop_watch.set()
        if self._watch.is_alive():
            self._watch.join(5)
        runs = list(self.running.values())
        for group in ([r for r in runs if not r.process.stand_in], [r for r in runs if r.process.stand_in]):
            terminate([r.popen for r in group], time.monotonic() + grace_s)
        for run in runs:
            run.log.close()


@contextlib.contextmanager
def dead_port() -> Iterator[int]:
    """A loopback port bound but not listening for as long as it is held: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, free_port()))
        yield int(sock.getsockname()[1])
