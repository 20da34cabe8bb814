"""``python -m acr.serve``: which service, host and port it serves (arguments, then ``ACR_*``, then the
service's usual port), uvicorn running the service's app factory, and the ``--probe`` health check."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from acr import serve
from acr.settings import SERVICE_PORTS


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was asked to serve (nothing is served)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    for name in ("ACR_SERVICE", "ACR_PORT", "ACR_HOST"):
        monkeypatch.delenv(name, raising=False)
    return calls


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def healthy_port() -> Iterator[int]:
    """A port where ``/healthz`` answers 200 (and anything else 503)."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_the_default_port_comes_from_the_service_name(service: str, served: list[dict[str, Any]]) -> None:
    assert serve.main([service]) == 0
    (call,) = served
    assert call["app"] == f"{service.replace('-', '_')}.main:create_app"
    assert (call["factory"], call["host"], call["port"]) == (True, "127.0.0.1", SERVICE_PORTS[service])


def test_arguments_win_over_the_defaults(served: list[dict[str, Any]]) -> None:
    serve.main(["ride-manager", "--host", "0.0.0.0", "--port", "9123"])
    (call,) = served
    assert (call["app"], call["host"], call["port"]) == ("ride_manager.main:create_app", "0.0.0.0", 9123)


def test_the_service_host_and_port_are_read_from_the_environment(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACR_SERVICE", "reward")
    monkeypatch.setenv("ACR_PORT", "9006")
    monkeypatch.setenv("ACR_HOST", "0.0.0.0")
    serve.main([])
    monkeypatch.delenv("ACR_PORT")
    serve.main([])
    assert [(c["app"], c["host"], c["port"]) for c in served] == [
        ("reward.main:create_app", "0.0.0.0", 9006),
        ("reward.main:create_app", "0.0.0.0", SERVICE_PORTS["reward"]),
    ]


@pytest.mark.parametrize("argv", [[], ["no-such-service"]])
def test_no_service_or_an_unknown_one_is_a_usage_error(
    argv: list[str], served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        serve.main(argv)
    assert exited.value.code == 2 and served == []
    assert "usage: python -m acr.serve" in capsys.readouterr().err


def test_probe_exits_0_when_healthz_answers_200(healthy_port: int, served: list[dict[str, Any]]) -> None:
    assert serve.main(["reward", "--probe", "--port", str(healthy_port)]) == 0
    assert served == []  # a probe serves nothing


def test_probe_exits_1_when_nothing_listens(served: list[dict[str, Any]]) -> None:
    assert serve.main(["reward", "--probe", "--port", str(_unused_port())]) == 1


def test_the_probe_as_a_process_exits_1_against_a_port_with_nothing_listening() -> None:
    """What a container health check runs."""
    done = subprocess.run(
        [sys.executable, "-m", "acr.serve", "reward", "--probe", "--port", str(_unused_port())],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stderr
