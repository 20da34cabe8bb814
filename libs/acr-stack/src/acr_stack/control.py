"""The fault proxy's control API, on loopback only; the BFF's ``/ops/chaos/outages`` calls it
(``ACR_CHAOS_CONTROL_URL``).

- ``POST /outages`` ``{"target": "aws" | "<service>", "mode": "refuse" | "blackhole" | "latency",
  "seconds": 1..600, "latencyMs": n (latency mode only)}`` -> 202, the window;
- ``GET /outages`` -> ``{"outages": [...]}`` the open windows (``?closed=true``: the closed ones too);
- ``GET /outages/{outageId}`` -> one window, open or closed, with its counts;
- ``GET /healthz``.

A window is ``{"outageId", "target", "mode", "seconds", "latencyMs", "until", "open", "counts": {"refused",
"reset", "held", "delayed"}}``. Errors have the services' shape, ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from acr_stack.faultproxy import FaultProxy, parse_outage

MAX_BODY = 16_384
HOST = "127.0.0.1"


class ControlServer:
    """Serves the control API of ``proxy`` on ``127.0.0.1:port`` from a thread."""

    def __init__(self, proxy: FaultProxy, port: int) -> None:
        self.proxy = proxy
        self._server = ThreadingHTTPServer((HOST, port), _handler(proxy))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-control", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ControlHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ControlHandler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # the name http.server calls
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._answer(200, {"status": "ok", "service": "fault-proxy"})
        elif url.path == "/outages":
            closed = parse_qs(url.query).get("closed", ["false"])[-1] == "true"
            self._answer(200, {"outages": self.proxy.outages(closed=closed)})
        elif url.path.startswith("/outages/"):
            found = self.proxy.outage(url.path.removeprefix("/outages/"))
            if found is None:
                self._error(404, "outage_not_found", "no such outage")
            else:
                self._answer(200, found)
        else:
            self._error(404, "not_found", "Not Found")

    def do_POST(self) -> None:  # the name http.server calls
        if urlsplit(self.path).path != "/outages":
            self._error(404, "not_found", "Not Found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._error(400, "bad_request", "request body too large")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._error(400, "bad_request", "request body is not valid JSON")
            return
        try:
            outage = self.proxy.open(parse_outage(body, self.proxy.services))
        except ValueError as exc:
            self._error(422, "validation_error", str(exc))
            return
        self._answer(202, self.proxy.outage(outage.outage_id))

    def _error(self, status: int, code: str, message: str) -> None:
        self._answer(status, {"error": {"code": code, "message": message}})

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (the windows they open are, by the proxy)."""
