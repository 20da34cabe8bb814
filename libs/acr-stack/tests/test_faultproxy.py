"""The fault proxy against a local HTTP server standing in for the emulator: each mode really happens
(refused, held, delayed), only to the services it targets, and every window closes by itself."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from acr_stack.faultproxy import FaultProxy, OutageRequest, parse_outage
from acr_stack.runner import free_port

SERVICES = ("payment", "reward")


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 talks to the emulator

    def do_GET(self) -> None:  # the name http.server calls
        body = f"echo {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the proxy reset is no error here."""


@pytest.fixture
def emulator() -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(emulator: int) -> Iterator[FaultProxy]:
    lines: list[str] = []
    faults = FaultProxy(emulator, {s: free_port() for s in SERVICES}, log=lines.append)
    faults.start()
    faults.lines = lines  # type: ignore[attr-defined]
    yield faults
    faults.stop()


def connect(proxy: FaultProxy, service: str, timeout_s: float = 5) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.ports[service], timeout=timeout_s)


def get(connection: http.client.HTTPConnection, path: str = "/x") -> str:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.read().decode()


def counts(proxy: FaultProxy, outage_id: str) -> dict[str, int]:
    found = proxy.outage(outage_id)
    assert found is not None
    return found["counts"]  # type: ignore[no-any-return]


def test_without_a_window_each_service_reaches_the_emulator_through_its_own_port(proxy: FaultProxy) -> None:
    assert proxy.endpoint("payment") == f"http://127.0.0.1:{proxy.ports['payment']}"
    for service in SERVICES:
        assert get(connect(proxy, service), f"/{service}") == f"echo /{service}"


def test_refuse_resets_new_connections_and_the_open_ones_of_its_target_only(proxy: FaultProxy) -> None:
    kept_open = connect(proxy, "payment")
    assert get(kept_open) == "echo /x"
    other = connect(proxy, "reward")
    assert get(other) == "echo /x"

    outage = proxy.open(OutageRequest("payment", "refuse", 30))
    time.sleep(0.2)  # the loop resets the open connections
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        get(kept_open)
    for _ in range(3):
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            get(connect(proxy, "payment"))
    assert get(other) == "echo /x" and get(connect(proxy, "reward")) == "echo /x"
    assert counts(proxy, outage.outage_id) == {"refused": 3, "reset": 1, "held": 0, "delayed": 0}


def test_a_refuse_of_aws_cuts_every_service_and_closes_by_itself(proxy: FaultProxy) -> None:
    outage = proxy.open(OutageRequest("aws", "refuse", 1))
    for service in SERVICES:
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            get(connect(proxy, service))
    assert [o["outageId"] for o in proxy.outages()] == [outage.outage_id]
    time.sleep(1.1)
    assert proxy.outages() == []
    assert [o["open"] for o in proxy.outages(closed=True)] == [False]
    assert all(get(connect(proxy, service)) == "echo /x" for service in SERVICES)
    assert counts(proxy, outage.outage_id)["refused"] == 2
    assert any("closed" in line and "refused 2" in line for line in proxy.lines)  # type: ignore[attr-defined]


def test_a_blackhole_accepts_and_answers_nothing_until_it_closes(proxy: FaultProxy) -> None:
    kept_open = connect(proxy, "reward", timeout_s=10)
    assert get(kept_open) == "echo /x"
    outage = proxy.open(OutageRequest("reward", "blackhole", 1.5))
    impatient = connect(proxy, "reward", timeout_s=0.5)
    with pytest.raises(TimeoutError):
        get(impatient)  # connected (accepted), then nothing
    started = time.monotonic()
    assert get(kept_open, "/late") == "echo /late"  # held, then answered once the window closed
    assert time.monotonic() - started > 0.7
    assert get(connect(proxy, "payment")) == "echo /x"  # not its target
    assert counts(proxy, outage.outage_id) == {"refused": 0, "reset": 0, "held": 2, "delayed": 0}


def test_latency_delays_each_request_and_open_windows_add_up(proxy: FaultProxy) -> None:
    connection = connect(proxy, "payment")
    first = proxy.open(OutageRequest("aws", "latency", 5, latency_ms=200))
    second = proxy.open(OutageRequest("payment", "latency", 5, latency_ms=300))
    for _ in range(2):  # two requests on one keep-alive connection: each one delayed
        started = time.monotonic()
        assert get(connection) == "echo /x"
        assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    assert get(connect(proxy, "reward")) == "echo /x"
    assert 0.2 <= time.monotonic() - started < 0.5
    assert counts(proxy, first.outage_id)["delayed"] == 3
    assert counts(proxy, second.outage_id)["delayed"] == 2


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"target": "aws", "mode": "refuse"},
        {"target": "aws", "mode": "refuse", "seconds": 0},
        {"target": "aws", "mode": "refuse", "seconds": 601},
        {"target": "aws", "mode": "refuse", "seconds": "10"},
        {"target": "aws", "mode": "refuse", "seconds": True},
        {"target": "nowhere", "mode": "refuse", "seconds": 10},
        {"target": "aws", "mode": "flood", "seconds": 10},
        {"target": "aws", "mode": "latency", "seconds": 10},
        {"target": "aws", "mode": "latency", "seconds": 10, "latencyMs": 0.5},
        {"target": "aws", "mode": "refuse", "seconds": 10, "latencyMs": 100},
        {"target": "aws", "mode": "refuse", "seconds": 10, "extra": 1},
    ],
)
def test_an_invalid_outage_is_refused_with_a_reason(body: object) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_outage(body, SERVICES)


def test_a_valid_outage_is_read_as_asked() -> None:
    assert parse_outage(
        {"target": "reward", "mode": "latency", "seconds": 600, "latencyMs": 250}, SERVICES
    ) == (OutageRequest("reward", "latency", 600.0, 250))
    assert parse_outage({"target": "aws", "mode": "blackhole", "seconds": 1.5}, SERVICES) == OutageRequest(
        "aws", "blackhole", 1.5
    )


def test_stop_frees_every_port(emulator: int) -> None:
    proxy = FaultProxy(emulator, {"payment": free_port()})
    proxy.start()
    proxy.stop()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", proxy.ports["payment"]))
