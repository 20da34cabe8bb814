"""The round-robin entry point in front of replicas standing in for a service: each new connection goes
to the next replica, a replica that refuses is skipped, and a websocket passes through both ways."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from acr_stack.entrypoint import EntryPoints, Route
from acr_stack.runner import free_port


def _answer(name: str) -> Any:
    """A replica: answers a websocket with its name, then echoes every message with it."""

    def handler(connection: ServerConnection) -> None:
        connection.send(name)
        for message in connection:
            connection.send(f"{name}: {message}")

    return handler


@contextmanager
def _serving(server: Server) -> Iterator[None]:
    """A websockets server answering from a thread for the length of a ``with``."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def replicas() -> Iterator[list[int]]:
    """Three replicas listening on free ports."""
    ports = [free_port() for _ in range(3)]
    with ExitStack() as servers:
        for n, port in enumerate(ports, start=1):
            server = servers.enter_context(serve(_answer(f"replica-{n}"), "127.0.0.1", port))
            servers.enter_context(_serving(server))
        yield ports


@contextmanager
def _entry(ports: list[int]) -> Iterator[tuple[int, Route]]:
    """An entry point in front of ``ports``: its own port and its route (with the counts)."""
    route = Route(free_port(), ports)
    entry = EntryPoints({"bff": route})
    entry.start()
    try:
        yield route.port, route
    finally:
        entry.stop()


def _who(port: int) -> str:
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
        return str(ws.recv(5))


def test_each_new_connection_goes_to_the_next_replica(replicas: list[int]) -> None:
    with _entry(replicas) as (port, route):
        assert [_who(port) for _ in range(6)] == ["replica-1", "replica-2", "replica-3"] * 2
        assert route.by_replica == dict.fromkeys(replicas, 2) and route.skipped == 0


def test_a_replica_that_refuses_is_skipped(replicas: list[int]) -> None:
    dead = free_port()  # nothing listens there: a killed replica
    with _entry([replicas[0], dead, replicas[1]]) as (port, route):
        assert [_who(port) for _ in range(4)] == ["replica-1", "replica-2", "replica-2", "replica-1"]
        assert route.skipped == 1 and dead not in route.by_replica


def test_when_every_replica_refuses_the_client_is_closed() -> None:
    with _entry([free_port(), free_port()]) as (port, route):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            connection.request("GET", "/healthz")
            connection.getresponse()
        assert route.refused == 1 and route.skipped == 2


def test_a_websocket_passes_both_ways_and_stays_on_its_replica(replicas: list[int]) -> None:
    with _entry(replicas) as (port, _route):
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            assert ws.recv(5) == "replica-1"
            for n in range(3):
                ws.send(f"ride.updated v{n}")
                assert ws.recv(5) == f"replica-1: ride.updated v{n}"
            assert _who(port) == "replica-2"  # meanwhile, another connection goes elsewhere
