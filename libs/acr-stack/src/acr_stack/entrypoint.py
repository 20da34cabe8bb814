"""Round-robin entry points: a service run as several replicas keeps its usual port, where this TCP proxy
hands each new connection to the next replica that accepts it.

It works at the TCP level, so HTTP keep-alive, long polls and websockets pass untouched (a connection
stays with the replica it was given). A replica that refuses the connection (killed, or restarting) is
skipped for the next one; when all refuse, the client's connection is closed. A replica that dies
mid-connection resets its clients' connections, and their next connection goes elsewhere, which is what
a load balancer in front of containers does too.

Written here rather than taken from the package registries: HAProxy or nginx would be a system package
and a config file to generate for ``make run``, and the Python proxies on PyPI are forward (SOCKS/HTTP)
proxies, not balancers. This one is an asyncio loop in a thread of the runner, like the fault proxy.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from acr_stack.serverloop import START_TIMEOUT_S, ServerLoop

CHUNK = 65_536
CONNECT_TIMEOUT_S = 2.0


@dataclass
class Route:
    """One entry point: the port clients connect to and the replicas' ports, taken in turn."""

    port: int
    replicas: list[int]
    _next: int = 0
    connections: int = 0  # handed to a replica
    skipped: int = 0  # replicas that refused one
    refused: int = 0  # clients closed because every replica refused
    by_replica: dict[int, int] = field(default_factory=dict)

    def turn(self) -> list[int]:
        """Every replica once, starting with the next one in turn (and moving the turn on by one)."""
        start = self._next
        self._next = (self._next + 1) % len(self.replicas)
        return self.replicas[start:] + self.replicas[:start]


class EntryPoints(ServerLoop):
    """Listens on each route's port and forwards every connection to one of its replicas."""

    def __init__(self, routes: dict[str, Route], host: str = "127.0.0.1") -> None:
        super().__init__("entry-points")
        self.routes = routes
        self._host = host
        self._servers: list[asyncio.Server] = []
        self._open: set[asyncio.StreamWriter] = set()  # both ends of every connection carried

    async def _listen(self) -> None:
        for route in self.routes.values():
            serve = functools.partial(self._serve, route)
            self._servers.append(
                await asyncio.start_server(serve, self._host, route.port, reuse_address=True)
            )

    async def _close(self) -> None:
        """Stop accepting, reset every connection, and let their pumps end."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        for writer in list(self._open):
            writer.transport.abort()
        pumps = asyncio.all_tasks() - {asyncio.current_task()}
        if pumps:
            await asyncio.wait(pumps, timeout=START_TIMEOUT_S)

    async def _serve(
        self, route: Route, client: asyncio.StreamReader, to_client: asyncio.StreamWriter
    ) -> None:
        upstream = await self._connect(route)
        if upstream is None:
            route.refused += 1
            to_client.transport.abort()
            return
        replica, to_replica = upstream
        self._open |= {to_client, to_replica}
        try:
            await asyncio.gather(_pump(client, to_replica), _pump(replica, to_client))
        finally:
            self._open -= {to_client, to_replica}
            to_replica.close()
            to_client.close()

    async def _connect(self, route: Route) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for port in route.turn():
            try:
                connected = await asyncio.wait_for(
                    asyncio.open_connection(self._host, port), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                route.skipped += 1
                continue
            route.connections += 1
            route.by_replica[port] = route.by_replica.get(port, 0) + 1
            return connected
        return None


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy one direction until its end, then pass the end on (a half close); a reset aborts both."""
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof() and not sink.transport.is_closing():
            sink.write_eof()
    except OSError:
        sink.transport.abort()
