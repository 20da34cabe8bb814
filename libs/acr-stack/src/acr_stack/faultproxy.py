"""The fault proxy of a chaos stack: one TCP port per service in front of the emulator, and the outage
windows it carries out (``refuse``, ``blackhole``, ``latency``) for every service (``aws``) or one.

Each service's ``ACR_AWS_ENDPOINT_URL`` names its own port here, so one service's traffic can be cut
alone. A window opens for N seconds and closes by itself; several may be open at once:

- ``refuse``: a new connection is reset as soon as it is accepted, before a byte is read (the client's
  call fails at once, as against a refused port, but here it is counted), and the connections already
  open are reset when the window opens;
- ``blackhole``: connections are accepted and nothing goes through, either way, until the window closes.
  The bytes are held, not dropped (what TCP does once a partition heals): a request sent during the
  window reaches the emulator when it closes, even if its client gave up meanwhile;
- ``latency``: each request (the first bytes a client sends after an answer) waits ``latencyMs`` more;
  open latency windows add up.

Every window counts what it did: ``refused`` and ``reset`` connections, connections ``held``, requests
``delayed``.

One asyncio event loop in one thread of the runner carries every connection: the services keep pools of
keep-alive connections and long polls open, which would be a thread each otherwise; and a window is only
a deadline that a waiting coroutine checks, with no thread to wake.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from acr import clock
from acr_stack.serverloop import ServerLoop

AWS = "aws"
MODES = ("refuse", "blackhole", "latency")
MAX_SECONDS = 600
MAX_LATENCY_MS = 60_000
COUNTS = ("refused", "reset", "held", "delayed")
CLOSED_KEPT = 500  # closed windows kept (with their counts) for the tests and the log
CHUNK = 65_536


@dataclass(frozen=True)
class OutageRequest:
    """What a caller asks for: a mode on a target for a number of seconds."""

    target: str
    mode: str
    seconds: float
    latency_ms: int | None = None


def _number(value: object, name: str, low: float, high: float, *, integer: bool = False) -> float:
    wrong_kind = isinstance(value, bool) or (integer and not isinstance(value, int))
    if wrong_kind or not isinstance(value, int | float) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} within {low:g}..{high:g}")
    return float(value)


def parse_outage(body: object, services: Collection[str]) -> OutageRequest:
    """The outage a JSON body asks for; ``ValueError`` saying why when it is not a valid one."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - {"target", "mode", "seconds", "latencyMs"})
    if unknown:
        raise ValueError(f"unknown fields: {unknown}")
    target, mode, latency = body.get("target"), body.get("mode"), body.get("latencyMs")
    if target != AWS and target not in services:
        raise ValueError(f"target must be {AWS!r} or one of {sorted(services)}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}")
    seconds = _number(body.get("seconds"), "seconds", 1, MAX_SECONDS)
    if (mode == "latency") != (latency is not None):
        raise ValueError("latencyMs is required in latency mode, and only there")
    latency_ms = (
        None if latency is None else int(_number(latency, "latencyMs", 1, MAX_LATENCY_MS, integer=True))
    )
    return OutageRequest(str(target), str(mode), seconds, latency_ms)


@dataclass
class Outage:
    """One window: open from ``opened`` (``time.time()``) for ``seconds``, and what it did."""

    outage_id: str
    target: str
    mode: str
    seconds: float
    opened: float
    latency_ms: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    @property
    def until(self) -> float:
        return self.opened + self.seconds

    def covers(self, service: str, now: float) -> bool:
        return now < self.until and self.target in (AWS, service)

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "outageId": self.outage_id,
            "target": self.target,
            "mode": self.mode,
            "seconds": self.seconds,
            "latencyMs": self.latency_ms,
            "until": clock.iso(clock.from_timestamp(self.until)),
            "open": now < self.until,
            "counts": dict(self.counts),
        }


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0), not a graceful FIN."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Connection:
    """A client's connection to a service's port and, once through, the proxy's one to the emulator."""

    service: str
    client: asyncio.StreamWriter
    task: asyncio.Task[Any] | None = None
    upstream: asyncio.StreamWriter | None = None
    awaiting_request: bool = True  # the next bytes from the client start a request
    held_by: set[str] = field(default_factory=set)

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


class FaultProxy(ServerLoop):
    """Listens on ``ports`` (service -> port) and forwards to the emulator on ``upstream_port``, carrying
    out the outage windows opened with :meth:`open` (from any thread)."""

    def __init__(
        self,
        upstream_port: int,
        ports: dict[str, int],
        *,
        host: str = "127.0.0.1",
        log: Callable[[str], None] = lambda _line: None,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("fault-proxy")
        self.ports = dict(ports)
        self._upstream = (host, upstream_port)
        self._host = host
        self._log = log
        self._now = clock_s
        self._lock = threading.Lock()  # the windows and their counts: read by the control API's threads
        self._outages: list[Outage] = []
        self._connections: dict[str, set[_Connection]] = {service: set() for service in ports}
        self._servers: list[asyncio.Server] = []

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.ports)

    def endpoint(self, service: str) -> str:
        """The ``ACR_AWS_ENDPOINT_URL`` of ``service``: its own port of the proxy."""
        return f"http://{self._host}:{self.ports[service]}"

    # --- lifecycle -----------------------------------------------------------------------------------
    async def _listen(self) -> None:
        for service, port in self.ports.items():
            serve = functools.partial(self._serve, service)
            server = await asyncio.start_server(serve, self._host, port, reuse_address=True)
            self._servers.append(server)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for connections in self._connections.values():
            for connection in list(connections):
                connection.reset()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # --- windows -------------------------------------------------------------------------------------
    def open(self, request: OutageRequest) -> Outage:
        """Open a window now; it closes by itself after ``request.seconds``."""
        if request.target != AWS and request.target not in self.ports:
            raise ValueError(f"no service {request.target!r} behind this proxy")
        outage = Outage(
            f"outage_{uuid.uuid4().hex}",
            request.target,
            request.mode,
            request.seconds,
            self._now(),
            request.latency_ms,
        )
        with self._lock:
            self._outages.append(outage)
            self._forget_closed()
        mode = f"{outage.mode} (+{outage.latency_ms} ms)" if outage.latency_ms else outage.mode
        self._log(f"outage {outage.outage_id} opened: {mode} of {outage.target} for {outage.seconds:g} s")
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._opened, outage)
        return outage

    def outages(self, *, closed: bool = False) -> list[dict[str, Any]]:
        """The open windows (with ``closed``: the closed ones kept too), oldest first."""
        now = self._now()
        with self._lock:
            return [o.as_json(now) for o in self._outages if closed or now < o.until]

    def outage(self, outage_id: str) -> dict[str, Any] | None:
        """One window, open or closed, with its counts."""
        now = self._now()
        with self._lock:
            return next((o.as_json(now) for o in self._outages if o.outage_id == outage_id), None)

    def _forget_closed(self) -> None:
        now = self._now()
        closed = [o for o in self._outages if o.until <= now]
        for outage in closed[: max(0, len(closed) - CLOSED_KEPT)]:
            self._outages.remove(outage)

    def _covering(self, service: str, mode: str) -> list[Outage]:
        now = self._now()
        with self._lock:
            return [o for o in self._outages if o.mode == mode and o.covers(service, now)]

    def _count(self, outage: Outage, what: str) -> None:
        with self._lock:
            outage.counts[what] += 1

    def _opened(self, outage: Outage) -> None:
        """On the loop: a refuse window resets the connections open now; every window logs its close."""
        assert self._loop is not None
        if outage.mode == "refuse":
            for service, connections in self._connections.items():
                if outage.target in (AWS, service):
                    for connection in list(connections):
                        self._count(outage, "reset")
                        connection.reset()
        self._loop.call_later(max(0.0, outage.until - self._now()), self._closed, outage)

    def _closed(self, outage: Outage) -> None:
        with self._lock:
            counts = ", ".join(f"{name} {n}" for name, n in outage.counts.items())
        self._log(f"outage {outage.outage_id} closed: {outage.mode} of {outage.target}; {counts}")

    # --- connections ---------------------------------------------------------------------------------
    async def _serve(self, service: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(service, writer, task=asyncio.current_task())
        refusing = self._covering(service, "refuse")
        if refusing:
            for outage in refusing:
                self._count(outage, "refused")
            connection.reset()
            return
        self._connections[service].add(connection)
        try:
            await self._forward(connection, reader)
        except (asyncio.CancelledError, OSError):
            connection.reset()
        finally:
            self._connections[service].discard(connection)
            connection.close()

    async def _forward(self, connection: _Connection, client: asyncio.StreamReader) -> None:
        """Once no blackhole holds the connection, open one to the emulator and pump both ways."""
        await self._hold(connection)
        upstream, connection.upstream = await asyncio.open_connection(*self._upstream)
        await asyncio.gather(
            self._pump(connection, client, connection.upstream, to_emulator=True),
            self._pump(connection, upstream, connection.client, to_emulator=False),
        )

    async def _pump(
        self,
        connection: _Connection,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        to_emulator: bool,
    ) -> None:
        try:
            while chunk := await source.read(CHUNK):
                await self._gate(connection, to_emulator)
                sink.write(chunk)
                await sink.drain()
            if sink.can_write_eof() and not sink.transport.is_closing():
                sink.write_eof()
        except OSError:
            connection.reset()

    async def _gate(self, connection: _Connection, to_emulator: bool) -> None:
        """What the open windows do to one chunk: held by a blackhole, delayed if it starts a request."""
        await self._hold(connection)
        if not to_emulator:
            connection.awaiting_request = True
            return
        if connection.awaiting_request:
            connection.awaiting_request = False
            delay_ms = 0
            for outage in self._covering(connection.service, "latency"):
                self._count(outage, "delayed")
                delay_ms += outage.latency_ms or 0
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)

    async def _hold(self, connection: _Connection) -> None:
        """Wait while a blackhole covers the connection's service (counted once per connection)."""
        while holding := self._covering(connection.service, "blackhole"):
            for outage in holding:
                if outage.outage_id not in connection.held_by:
                    connection.held_by.add(outage.outage_id)
                    self._count(outage, "held")
            await asyncio.sleep(max(0.01, min(o.until for o in holding) - self._now()))
