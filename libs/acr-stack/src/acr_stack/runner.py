"""Start, watch and stop the embedded stack (used by ``make run`` and the system tests).

Start-up fails fast and says why: every process's output is kept (its last lines), and the moment any
process exits before the stack is up, or a service is not healthy in time, ``start`` stops everything
and raises :class:`StartupFailed` naming the process, its exit code or ``/healthz`` answer, and its last
lines. Once the stack is up, a service that exits is restarted (:mod:`acr_stack.supervisor`) until the stack
is stopped. With ``ACR_CHAOS`` on, the services reach the emulator through the fault proxy
(:mod:`acr_stack.faultproxy`), whose control API (:mod:`acr_stack.control`) the BFF calls.
"""

from __future__ import annotations

import ctypes
import json
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

from acr import clock
from acr.settings import SERVICE_PORTS
from acr_stack import accounts
from acr_stack.accounts import MULTI, parse_accounts
from acr_stack.control import ControlServer
from acr_stack.entrypoint import EntryPoints, Route
from acr_stack.faultproxy import FaultProxy
from acr_stack.keys import ServiceKeys
from acr_stack.principals import access_key_id
from acr_stack.replicas import Replica, parse_replicas, replica_names
from acr_stack.secrets import new_secrets
from acr_stack.supervisor import Exit, RestartPolicy, Supervisor, how_it_ended

PR_SET_PDEATHSIG = 1
CITY_SERVICES = frozenset({"address-finder", "car-dispatcher", "route-monitor", "car-simulator"})
TAIL_LINES = 40
REPORT_LINES = 12
FAILURE_GRACE_S = 2.5
EMULATOR_MODULE = "acr_stack.emulator"
FREE_PORTS = (20_000, 32_768)  # where free_port looks: above make run's ports, below the ephemeral range
ENDPOINT = "ACR_AWS_ENDPOINT_URL"
PER_PROCESS = frozenset(
    {"ACR_REPLICA", "ACR_SERVICE_KEY"}
)  # settings the stack gives each process its own value of
TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})  # what the services' settings read as true
_handed_out: set[int] = set()
_handing_out = threading.Lock()  # stacks may be configured from several threads at once
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
    with _handing_out:
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


class InvalidSetting(StartupFailed):
    """A setting of the stack itself (e.g. ``ACR_REPLICAS``) is not valid (nothing was started)."""


class StartupTimedOut(StartupFailed):
    """Something the start-up waits for did not happen in time."""


class PortTaken(StartupFailed):
    """A port of the stack was taken before the stack started (nothing was started)."""


class StartupCancelled(RuntimeError):
    """Start-up was interrupted (Ctrl-C) before the stack was up."""


@dataclass
class StackConfig:
    """Ports, settings and where the logs go. ``fixed()`` is ``make run``; ``free()`` is for tests.

    ``env`` applies to every process; ``service_env_overrides`` to one service only. With ``ACR_CHAOS`` on
    (in ``env`` or the runner's environment), each service reaches the emulator through its own port of
    the fault proxy (``proxy_ports``, free ports unless given), whose control API listens on
    ``control_port``. ``ACR_REPLICAS`` (:mod:`acr_stack.replicas`) runs several processes of a service,
    each on a port of its own (``replica_ports``, free ports unless given), behind a round-robin entry
    point on the service's usual port (:mod:`acr_stack.entrypoint`); they share its fault proxy port.
    ``secrets`` (``ACR_OPS_TOKEN``, ``ACR_TOKEN_SECRET``) are fresh random ones unless given (``make run``
    gives the checkout's: :mod:`acr_stack.secrets`); one set in the environment or in ``env`` wins."""

    emulator_port: int
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    services: tuple[str, ...] = tuple(SERVICE_PORTS)
    service_env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    proxy_ports: dict[str, int] = field(default_factory=dict)
    control_port: int | None = None
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    replica_ports: dict[str, list[int]] = field(default_factory=dict)
    multi_account: bool = field(init=False, default=False)  # ``ACR_ACCOUNTS=multi``: acr_stack.accounts
    account_env: dict[str, str] = field(init=False, default_factory=dict)  # the ARNs services need then
    key_accounts: dict[str, str] = field(init=False, default_factory=dict)  # the emulator's ``--accounts``
    secrets: dict[str, str] = field(default_factory=new_secrets, repr=False)
    keys: ServiceKeys = field(default_factory=ServiceKeys.generate)  # new for each stack configured

    def __post_init__(self) -> None:
        if self.chaos and not self.proxy_ports:
            self.proxy_ports = {service: free_port() for service in self.ports}
        if self.chaos and self.control_port is None:
            self.control_port = free_port()
        setting = self.env.get("ACR_REPLICAS", os.environ.get("ACR_REPLICAS", ""))
        try:
            counts = parse_replicas(setting, list(self.ports))
        except ValueError as exc:
            raise InvalidSetting(f"bad setting ACR_REPLICAS={setting!r}: {exc}") from None
        for service, count in counts.items():
            if count > 1 and len(self.replica_ports.get(service, [])) != count:
                self.replica_ports[service] = [free_port() for _ in range(count)]
        setting = self.env.get("ACR_ACCOUNTS", os.environ.get("ACR_ACCOUNTS", ""))
        try:
            self.multi_account = parse_accounts(setting) == MULTI
        except ValueError as exc:
            raise InvalidSetting(f"bad setting ACR_ACCOUNTS={setting!r}: {exc}") from None
        if self.multi_account:
            service_plans = accounts.plans()
            layout = accounts.layout(service_plans)
            self.account_env = accounts.resource_arns(service_plans, layout)
            self.key_accounts = accounts.key_accounts(service_plans, layout)

    @classmethod
    def fixed(cls, **kwargs: object) -> StackConfig:
        return cls(emulator_port=4566, ports=dict(SERVICE_PORTS), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def free(cls, **kwargs: object) -> StackConfig:
        return cls(emulator_port=free_port(), ports={s: free_port() for s in SERVICE_PORTS}, **kwargs)  # type: ignore[arg-type]

    def url(self, service: str) -> str:
        """Where ``service`` answers: its only process, or the entry point of its replicas."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def replicas(self, name: str) -> list[Replica]:
        """The processes of a service, or the one replica named ``name`` (e.g. ``route-monitor-2``)."""
        if name in self.ports:
            ports = self.replica_ports.get(name) or [self.ports[name]]
            return [Replica(name, n, p) for n, p in zip(replica_names(name, len(ports)), ports, strict=True)]
        service = name.rpartition("-")[0]
        found = [r for r in self.replicas(service) if r.name == name] if service in self.ports else []
        if not found:
            raise KeyError(f"no service or replica {name!r}")
        return found

    @property
    def processes(self) -> list[Replica]:
        """Every service process of the stack (the services in ``services``)."""
        return [replica for service in self.services for replica in self.replicas(service)]

    @property
    def replicated(self) -> dict[str, list[Replica]]:
        """The services run as several processes, each with its replicas."""
        return {service: self.replicas(service) for service in self.services if service in self.replica_ports}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def chaos(self) -> bool:
        """``ACR_CHAOS`` is on and the services talk to this stack's emulator (never to AWS)."""
        value = self.env.get("ACR_CHAOS", os.environ.get("ACR_CHAOS", ""))
        aimed_at_emulator = self.env.get("ACR_AWS_ENDPOINT_URL", self.endpoint) == self.endpoint
        return value.strip().lower() in TRUE_WORDS and aimed_at_emulator

    @property
    def control_url(self) -> str:
        """The fault proxy's control API (empty without chaos)."""
        return f"http://127.0.0.1:{self.control_port}" if self.chaos and self.control_port else ""

    def service_env(self, service: str | None = None) -> dict[str, str]:
        """The environment of one process of the stack (``service`` None: the shared part)."""
        env = dict(os.environ)
        env.update({name: value for name, value in self.secrets.items() if not env.get(name)})
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
        env.update(self.account_env)  # multi-account: what lives in another context's account, by ARN
        env["ACR_REPLICA_URLS"] = json.dumps(
            {s: {r.name: f"http://127.0.0.1:{r.port}" for r in self.replicas(s)} for s in self.services}
        )
        env.update(self.env)
        replica = self.process(service)
        if replica is not None:
            service = replica.service
            env["ACR_REPLICA"] = replica.name
        if service in SERVICE_PORTS:  # the emulator tells the services apart by their keys
            env["AWS_ACCESS_KEY_ID"] = access_key_id(service)
        env.update(self.keys.env(service))  # its own private key only, and every public key
        if self.chaos:
            env["ACR_CHAOS_CONTROL_URL"] = self.control_url
            if service in self.proxy_ports:
                env["ACR_AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{self.proxy_ports[service]}"
        env.update(self.service_env_overrides.get(service or "", {}))
        return env

    @property
    def ops_token(self) -> str:
        """The ``X-Ops-Token`` of this stack's ops API (what a test client or the dashboard sends)."""
        return self.service_env("bff")["ACR_OPS_TOKEN"]

    def process(self, name: str | None) -> Replica | None:
        """The service process named ``name`` (a service run once, or a replica), else None."""
        try:
            found = self.replicas(name) if name else []
        except KeyError:
            return None
        return found[0] if len(found) == 1 else None


@dataclass
class _Process:
    """One child process and the last lines it printed."""

    name: str
    argv: list[str]
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
    """Owns the processes it starts and always stops them. Once started, it restarts a service that
    exits (:mod:`acr_stack.supervisor`) until it is stopped; with chaos on, it runs the fault proxy."""

    def __init__(self, config: StackConfig, echo: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._echo = echo
        self._procs: dict[str, _Process] = {}
        self._lock = threading.RLock()  # the processes: changed by the caller's thread and the supervisor's
        self._pumps: list[threading.Thread] = []
        self._health_seen: dict[str, str] = {}
        self._unsupervised: set[str] = set()  # killed for good
        self.supervisor: Supervisor | None = None
        self.proxy: FaultProxy | None = None
        self._control: ControlServer | None = None
        self.entry_points: EntryPoints | None = None

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120, cancel: threading.Event | None = None) -> None:
        """Emulator and city (at once), the fault proxy (chaos only), topology, services; returns when
        every ``/healthz`` answers 200, and supervises the services from then on.

        Raises :class:`StartupFailed` (everything stopped) when a port is taken or a setting is invalid, as
        soon as a process exits, or when a service is not healthy within ``timeout_s``;
        :class:`StartupCancelled` when ``cancel`` is set."""
        deadline = time.monotonic() + timeout_s
        self._check_ports_free()
        try:
            self._spawn("emulator", self._emulator_command(), quiet=True)
            if CITY_SERVICES & set(self.config.services):
                self._spawn("city", [sys.executable, "-m", "acr_city", "prepare"], one_shot=True)
            self._check_settings()  # while the emulator starts
            self._wait(
                "the emulator answers", lambda: answers(self.config.endpoint + "/moto-api/"), deadline, cancel
            )
            if self.config.chaos:
                self._start_fault_proxy()
            self._spawn("topology", self._topology_command(), one_shot=True)
            self._wait("the topology is applied", lambda: "topology" not in self._procs, deadline, cancel)
            self._wait("the city is ready", lambda: "city" not in self._procs, deadline, cancel)
            self._start_entry_points()
            for service in self.config.services:
                self.start_service(service)
            self._wait_healthy({p.name for p in self.config.processes}, deadline, cancel)
        except BaseException:
            self.stop(grace_s=FAILURE_GRACE_S)
            raise
        self.supervise()

    def _emulator_command(self) -> list[str]:
        if not self.config.multi_account:
            return emulator_command(self.config.emulator_port)
        accounts_option = ("--accounts", json.dumps(self.config.key_accounts))
        return emulator_command(self.config.emulator_port, EMULATOR_MODULE, *accounts_option)

    def _topology_command(self) -> list[str]:
        """The topology step: ``acr-topology apply`` in one account; with ``ACR_ACCOUNTS=multi``, the
        exported stacks deployed account by account through the emulator's CloudFormation."""
        if self.config.multi_account:
            return [
                sys.executable,
                "-m",
                "acr_stack.account_stacks",
                "deploy",
                "--endpoint",
                self.config.endpoint,
            ]
        return [sys.executable, "-m", "acr.topology.cli", "apply"]

    def supervise(self) -> None:
        """From now on, restart a service that exits (``start`` calls it once the stack is up)."""
        if self.supervisor is None:
            self.supervisor = Supervisor(self, self._say, self.config.restart_policy)
            self.supervisor.start()

    def start_service(self, name: str) -> None:
        """Start a service (each of its replicas) or one replica, unless running (e.g. already restarted);
        it is supervised again."""
        for replica in self.config.replicas(name):
            with self._lock:
                self._unsupervised.discard(replica.name)
                running = self._procs.get(replica.name)
                if running is None or running.popen.poll() is not None:
                    self._spawn(replica.name, service_command(replica.service, replica.port))

    def wait_healthy(self, name: str, timeout_s: float = 120) -> None:
        """Wait for a (re)started service (each replica) or replica; :class:`StartupFailed` if it exits and
        will not be restarted, or stays unhealthy."""
        names = {replica.name for replica in self.config.replicas(name)}
        self._wait_healthy(names, time.monotonic() + timeout_s, None)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, *, for_good: bool = False) -> None:
        """Signal a service (each of its replicas) or one replica (e.g. ``bff-2``), for failure tests, and
        wait until it is gone. The supervisor restarts it, unless ``for_good``: then only
        ``start_service`` brings it back."""
        for replica in self.config.replicas(name):
            with self._lock:
                proc = self._procs[replica.name].popen
                if for_good:
                    self._unsupervised.add(replica.name)
                    del self._procs[replica.name]
            proc.send_signal(sig)
            proc.wait(10)

    def pids(self) -> dict[str, int]:
        """The pid of each running service process (a replica, or a service run once), by name."""
        with self._lock:
            procs = [p for p in self._procs.values() if self.config.process(p.name) is not None]
        return {p.name: p.popen.pid for p in procs if p.popen.poll() is None}

    def stop(self, grace_s: float = 8) -> None:
        """Stop restarting; SIGTERM the services, then close the fault proxy and stop the emulator they
        talk to; SIGKILL what lingers after ``grace_s``."""
        if self.supervisor is not None:
            self.supervisor.stop()
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        deadline = time.monotonic() + grace_s
        terminate([p.popen for p in procs if p.name != "emulator"], deadline)
        if self.entry_points is not None:
            self.entry_points.stop()
            self.entry_points = None
        self._stop_fault_proxy()
        terminate([p.popen for p in procs if p.name == "emulator"], max(deadline, time.monotonic() + 1))
        for pump in self._pumps:
            pump.join(2)
        self._pumps.clear()

    def alive(self) -> dict[str, bool]:
        with self._lock:
            return {name: proc.popen.poll() is None for name, proc in self._procs.items()}

    def exited(self) -> list[str]:
        """Reports on every long-running process that has exited and will not be restarted (the emulator,
        or any process before the stack is up); empty while all are up."""
        with self._lock:
            procs = [p for p in self._procs.values() if not p.one_shot and not self._restarts(p.name)]
        return [
            exit_report(p.name, code, p.last_lines()) for p in procs if (code := p.popen.poll()) is not None
        ]

    # --- supervision (acr_stack.supervisor.Supervised) ----------------------------------------------
    def _restarts(self, name: str) -> bool:
        """Whether the supervisor restarts ``name`` when it exits."""
        supervising = self.supervisor is not None and self.supervisor.running
        return supervising and self.config.process(name) is not None and name not in self._unsupervised

    def exits(self) -> dict[str, Exit]:
        with self._lock:
            return {
                name: Exit(proc, code, proc.started)
                for name, proc in self._procs.items()
                if self._restarts(name) and (code := proc.popen.poll()) is not None
            }

    def respawn(self, name: str, process: object) -> int | None:
        with self._lock:
            current = self._procs.get(name)
            if current is None or current is not process or not self._restarts(name):
                return None
            self._spawn(name, current.argv)
            return self._procs[name].popen.pid

    def _say(self, message: str, fields: dict[str, object]) -> None:
        """A line of the stack itself: echoed, and in ``acr-stack.log`` (JSON, like the services' logs)."""
        if self._echo is not None:
            self._echo(f"{'acr-stack':>14} | {message}")
        if self.config.log_dir is not None:
            line = {
                "time": clock.iso(clock.now()),
                "level": "WARNING",
                "service": "acr-stack",
                "message": message,
            }
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.config.log_dir / "acr-stack.log").open("a") as log:
                log.write(json.dumps(line | fields) + "\n")

    # --- replicas ------------------------------------------------------------------------------------
    def _start_entry_points(self) -> None:
        """The round-robin entry point of each service run as several replicas, on its usual port."""
        routes = {
            service: Route(self.config.ports[service], [r.port for r in replicas])
            for service, replicas in self.config.replicated.items()
        }
        if not routes:
            return
        entry_points = EntryPoints(routes)
        try:
            entry_points.start()
        except OSError as exc:
            raise StartupFailed(f"the replicas' entry points cannot listen: {exc}") from None
        self.entry_points = entry_points

    # --- chaos ---------------------------------------------------------------------------------------
    def _start_fault_proxy(self) -> None:
        assert self.config.control_port is not None
        proxy = FaultProxy(
            self.config.emulator_port, self.config.proxy_ports, log=lambda line: self._say(line, {})
        )
        try:
            proxy.start()
            self.proxy = proxy
            self._control = ControlServer(proxy, self.config.control_port)
        except OSError as exc:
            raise StartupFailed(f"the fault proxy cannot listen: {exc}") from None
        self._control.start()

    def _stop_fault_proxy(self) -> None:
        if self._control is not None:
            self._control.stop()
            self._control = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

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
        owners |= {r.name: r.port for r in self.config.processes}
        if self.config.chaos:
            owners |= {f"the fault proxy of {s}": port for s, port in self.config.proxy_ports.items()}
            owners["the fault proxy's control API"] = self.config.control_port or 0
        for name, port in owners.items():
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as exc:
                    raise PortTaken(
                        f"port {port} of {name} is taken ({exc.strerror}): is another stack running? "
                        "(acr-stack run --free-ports runs a second one)"
                    ) from None

    def _check_settings(self) -> None:
        """Validate every service's settings before starting anything (a bad value fails in a second):
        one ``python -m acr.settings`` per distinct set of ``ACR_*`` values, all at once (the fault proxy's
        port of each service, a valid URL the stack made, does not count as a difference)."""
        services_by_settings: dict[frozenset[tuple[str, str]], list[str]] = {}
        proxied = {f"http://127.0.0.1:{port}" for port in self.config.proxy_ports.values()}
        for service in self.config.services:
            env = self.config.service_env(service)
            settings = frozenset(
                (k, v)
                for k, v in env.items()
                if k.startswith("ACR_") and not (k == ENDPOINT and v in proxied) and k not in PER_PROCESS
            )
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
        """Forget one-shot steps that succeeded; fail on any other exit (but one the supervisor restarts)."""
        for proc in list(self._procs.values()):
            code = proc.popen.poll()
            if code is None or self._restarts(proc.name):
                continue
            if proc.one_shot and code == 0:
                del self._procs[proc.name]
                continue
            raise StartupFailed(exit_report(proc.name, code, proc.last_lines()))

    def _healthy(self, name: str) -> bool:
        """Whether one service process (a replica, or a service run once) answers ``/healthz`` 200."""
        port = self.config.replicas(name)[0].port
        seen = probe(f"http://127.0.0.1:{port}/healthz", timeout_s=1)
        if seen is not None:
            self._health_seen[name] = f"/healthz {seen}"
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
        log: IO[bytes] | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = log_path.open("ab")  # appended to by each restart; the child keeps its own descriptor
        try:
            popen = subprocess.Popen(
                argv,
                env=self.config.service_env(name),
                stdout=subprocess.PIPE if log is None else log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if log is not None:
                log.close()
        proc = _Process(name, argv, popen, one_shot, log_path)
        with self._lock:
            self._procs[name] = proc
        if log_path is None:
            echo = None if quiet else self._echo
            pump = threading.Thread(target=_pump, args=(proc, echo), name=f"pump-{name}", daemon=True)
            pump.start()
            self._pumps = [p for p in self._pumps if p.is_alive()] + [pump]


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
    how = how_it_ended(code)
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


def start_on_free_ports(
    make_config: Callable[[], StackConfig],
    timeout_s: float,
    attempts: int = 3,
    cancel: threading.Event | None = None,
) -> Stack:
    """A stack started on the free ports of ``make_config()`` (e.g. ``StackConfig.free``); when another
    process took one of them between the pick and the start, started again on new ports."""
    for attempt in range(1, attempts + 1):
        stack = Stack(make_config())
        try:
            stack.start(timeout_s=timeout_s, cancel=cancel)
        except PortTaken:
            if attempt == attempts:
                raise
            continue
        return stack
    raise ValueError("attempts must be at least 1")
