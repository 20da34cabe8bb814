"""A small client of the BFF's public API, as the app would use it, plus the ops controls."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

if TYPE_CHECKING:
    from acr_stack import Stack

LOG_DIR = Path(os.environ.get("ACR_TEST_LOG_DIR", ".run/test-logs"))
TERMINAL = {"PAID", "CANCELLED", "PAYMENT_FAILED"}


CONSISTENCY = "ACR-Consistency-Token"


@dataclass
class Rider:
    base: str
    rider_id: str
    token: str
    consistency: str | None = None  # from the last booking or cancel: reads on any BFF replica show it

    @classmethod
    def sign_up(cls, base: str, name: str) -> Rider:
        response = httpx.post(f"{base}/api/v1/riders", json={"name": name}, timeout=10)
        assert response.status_code == 201, response.text
        body = response.json()
        return cls(base, body["riderId"], body["token"])

    @property
    def headers(self) -> dict[str, str]:
        read_your_write = {CONSISTENCY: self.consistency} if self.consistency else {}
        return {"Authorization": f"Bearer {self.token}"} | read_your_write

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=10)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers=self.headers | (headers or {}), timeout=10)

    def _retrying(self, call: Callable[[], httpx.Response], attempts: int = 5) -> httpx.Response:
        """What an app does when the backend is briefly unavailable: try again (with the same
        Idempotency-Key, so a retry never books twice)."""
        for attempt in range(attempts):
            try:
                response = call()
            except httpx.TimeoutException:
                response = None
            if response is not None and response.status_code != 503:
                return response
            time.sleep(1 + attempt)
        return call()

    def quote(
        self, pickup: dict[str, Any], dropoff: dict[str, Any], traceparent: str | None = None
    ) -> httpx.Response:
        """A quote; with ``traceparent`` (W3C) it joins the app's trace, as an instrumented app's would."""
        headers = {"traceparent": traceparent} if traceparent else None
        return self._retrying(
            lambda: self.post("/api/v1/quotes", {"pickup": pickup, "dropoff": dropoff}, headers)
        )

    def book(self, quote_id: str, key: str | None = None, traceparent: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        if traceparent:
            headers["traceparent"] = traceparent
        booked = self._retrying(lambda: self.post("/api/v1/rides", {"quoteId": quote_id}, headers))
        self.consistency = booked.headers.get(CONSISTENCY, self.consistency)
        return booked

    def ride(self, ride_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/rides/{ride_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def _poll(self, ride_id: str) -> dict[str, Any] | None:
        """The ride, or None when the stack is too busy to answer right now (a 503 or a timeout)."""
        try:
            response = self.get(f"/api/v1/rides/{ride_id}")
        except httpx.TimeoutException:
            return None
        if response.status_code == 503:
            return None
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_for(
        self, ride_id: str, check: Callable[[dict[str, Any]], bool], timeout_s: float = 120, what: str = ""
    ) -> dict[str, Any]:
        """Poll the ride until ``check`` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            ride = self._poll(ride_id)
            if ride is not None and check(ride):
                return ride
            assert time.monotonic() < deadline, f"ride {ride_id} never became {what}: {ride}"
            time.sleep(0.3)

    def wait_status(self, ride_id: str, *statuses: str, timeout_s: float = 120) -> dict[str, Any]:
        return self.wait_for(ride_id, lambda r: r["status"] in statuses, timeout_s, "/".join(statuses))

    def websocket(self) -> ClientConnection:
        return connect(f"{self.base.replace('http', 'ws', 1)}/ws?token={self.token}", open_timeout=10)

    def me(self) -> dict[str, Any]:
        return self.get("/api/v1/riders/me").json()  # type: ignore[no-any-return]

    def me_when(
        self, check: Callable[[dict[str, Any]], bool], timeout_s: float = 30, what: str = ""
    ) -> dict[str, Any]:
        """Poll ``/riders/me`` until ``check`` holds: reward's rider stats are a read model built from its
        events, so they follow a PAID ride a moment after the ride shows its points."""
        deadline = time.monotonic() + timeout_s
        while True:
            me = self.me()
            if check(me):
                return me
            assert time.monotonic() < deadline, f"rider {self.rider_id} never had {what}: {me}"
            time.sleep(0.3)


class Ops:
    """The ops API of a stack, with that stack's ops token (``Ops.of(stack)``)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"X-Ops-Token": token}

    @classmethod
    def of(cls, stack: Stack) -> Ops:
        return cls(stack.config.url("bff"), stack.config.ops_token)

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}/ops{path}", params=params, headers=self.headers, timeout=20)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.base}/ops{path}", json=body, headers=self.headers, timeout=20)

    def patient_get(self, path: str, timeout_s: float = 60, **params: Any) -> Any:
        """``get``, asked again while the BFF or what it calls is down (see ``patiently``)."""
        response = patiently(
            lambda: httpx.get(f"{self.base}/ops{path}", params=params, headers=self.headers, timeout=20),
            timeout_s,
        )
        assert response is not None, f"GET /ops{path} got no answer within {timeout_s:.0f} s"
        assert response.status_code == 200, response.text
        return response.json()

    def car(self, car_id: str) -> dict[str, Any]:
        return next(c for c in self.get("/fleet")["cars"] if c["carId"] == car_id)

    def captures(self, ride_id: str) -> list[dict[str, Any]]:
        return [c for c in self.get("/payments", rideId=ride_id)["charges"] if c["type"] == "capture"]

    def wait(self, check: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.5)

    def projection(self, name: str) -> dict[str, Any]:
        """The read model ``name`` as ``/ops/projections`` lists it (every service's, by name)."""
        answer = self.get("/projections")
        assert answer["unavailable"] == [], answer
        (state,) = [p for p in answer["projections"] if p["name"] == name]
        return dict(state)

    def rebuilt(self, name: str, timeout_s: float = 120) -> dict[str, Any]:
        """Poll ``/ops/projections`` until ``name`` is LIVE with a last rebuild (REBUILDING until then)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.projection(name)
            if state["state"] == "LIVE" and state["lastRebuild"]:
                return state
            assert state["state"] == "REBUILDING", state
            assert time.monotonic() < deadline, f"still rebuilding: {state}"
            time.sleep(0.5)


@dataclass
class Reads:
    """Calls ``read`` over and over in a background thread (every ``pause_s``) until ``stop``, and keeps
    what it answers: None for a good read, else what was wrong (an HTTP error counts as one)."""

    read: Callable[[], str | None]
    pause_s: float = 0.1
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                failure = self.read()
            except httpx.HTTPError as exc:
                failure = repr(exc)
            if failure is not None:
                self.failures.append(failure)
            self.reads += 1
            time.sleep(self.pause_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Listener:
    """Collects every websocket message of one rider in a background thread."""

    rider: Rider
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: str | None = None  # why the server closed the connection, if it did
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._ws = self.rider.websocket()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(json.loads(self._ws.recv(timeout=0.5)))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.closed = f"{time.strftime('%H:%M:%S')} {exc}"
                return

    def send(self, message: dict[str, Any]) -> None:
        self._ws.send(json.dumps(message))

    def versions(self, ride_id: str) -> list[int]:
        return [
            m["version"]
            for m in list(self.messages)
            if m["type"] == "ride.updated" and m["rideId"] == ride_id
        ]

    def wait_version(self, ride_id: str, version: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while version not in self.versions(ride_id):
            assert time.monotonic() < deadline, (
                f"version {version} of {ride_id} never pushed within {timeout_s:g} s: "
                f"{self.versions(ride_id)}" + (f" (connection closed {self.closed})" if self.closed else "")
            )
            time.sleep(0.2)

    def close(self) -> None:
        self._stop.set()
        self._ws.close()
        self._thread.join(5)


def random_places(rider: Rider, count: int, rng: random.Random) -> list[dict[str, str]]:
    """Addresses spread over the city, found through the public reverse geocoder."""
    view = rider.get("/api/v1/map", bbox="-180,-90,180,90", zoom=1).json()
    min_lon, min_lat, max_lon, max_lat = view["bounds"]
    places = []
    for _ in range(count):
        lat = rng.uniform(min_lat + 0.1 * (max_lat - min_lat), max_lat - 0.1 * (max_lat - min_lat))
        lon = rng.uniform(min_lon + 0.1 * (max_lon - min_lon), max_lon - 0.1 * (max_lon - min_lon))
        places.append(
            {"addressId": rider.get("/api/v1/addresses/reverse", lat=lat, lon=lon).json()["addressId"]}
        )
    return places


def book_ride(rider: Rider, rng: random.Random, traceparent: str | None = None) -> dict[str, Any]:
    """Quote and book a trip between two random addresses; returns the booked ride. With ``traceparent``
    the quote and the booking carry the app's trace context (one trace for the ride, quote included)."""
    pickup, dropoff = random_places(rider, 2, rng)
    quote = rider.quote(pickup, dropoff, traceparent)
    assert quote.status_code == 201, quote.text
    booked = rider.book(quote.json()["quoteId"], traceparent=traceparent)
    assert booked.status_code == 202, booked.text
    return booked.json()  # type: ignore[no-any-return]


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def patiently(
    call: Callable[[], httpx.Response], timeout_s: float, pause_s: float = 1.0
) -> httpx.Response | None:
    """What an app does while the backend is down or restarting: call again (same body, same
    Idempotency-Key) after a growing pause, on a transport error or a 429/5xx, until ``timeout_s`` has
    passed; the first other answer, or None when there was none in time."""
    deadline = time.monotonic() + timeout_s
    pause = pause_s
    while True:
        try:
            response = call()
            if response.status_code not in RETRY_STATUSES:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() + pause > deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 1.5, 5.0)


class ResumingListener:
    """A rider app's websocket client that outlives a restarting BFF: on any disconnect it reconnects
    with backoff and sends ``{"type": "resume", "rideId", "afterVersion": <last seen>}`` for each ride it
    watches; a resume that fails for a reason other than ``ride_not_found`` is sent again later.

    It keeps what each connection received (``connections``: one list of ``ride.updated`` frames per
    connection, in the order they came), so a test can tell a repeat or a reorder within one connection
    from one across reconnects."""

    RESUME_RETRY_S = 2.0

    def __init__(self, rider: Rider, max_backoff_s: float = 5.0) -> None:
        self.rider = rider
        self.connections: list[list[dict[str, Any]]] = []
        self.errors: list[dict[str, Any]] = []
        self.disconnects: list[str] = []
        self._max_backoff_s = max_backoff_s
        self._watched: set[str] = set()
        self._last: dict[str, int] = {}
        self._resume_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ws-{rider.rider_id}", daemon=True)
        self._thread.start()

    def watch(self, ride_id: str) -> None:
        """Resume ``ride_id`` on every reconnect from now on."""
        with self._lock:
            self._watched.add(ride_id)

    def seen(self, ride_id: str) -> list[list[int]]:
        """The versions of ``ride_id`` each connection received, in order (one list per connection)."""
        with self._lock:
            return [[m["version"] for m in frames if m["rideId"] == ride_id] for frames in self.connections]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                ws = self.rider.websocket()
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake):
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            backoff = 0.5
            try:
                self._serve(ws)
            except (OSError, ConnectionClosed) as exc:
                with self._lock:
                    self.disconnects.append(f"{time.time():.1f} {type(exc).__name__}: {exc}")
            finally:
                ws.close()

    def _serve(self, ws: ClientConnection) -> None:
        """One connection: resume every watched ride, then read until it closes or the client stops."""
        with self._lock:
            frames: list[dict[str, Any]] = []
            self.connections.append(frames)
            self._resume_at = dict.fromkeys(self._watched, 0.0)
        while not self._stop.is_set():
            self._send_resumes(ws)
            try:
                message = json.loads(ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            self._received(message, frames)

    def _send_resumes(self, ws: ClientConnection) -> None:
        now = time.monotonic()
        with self._lock:
            due = [ride for ride, at in self._resume_at.items() if at <= now]
            for ride in due:
                del self._resume_at[ride]
            resumes = [{"type": "resume", "rideId": r, "afterVersion": self._last.get(r, 0)} for r in due]
        for resume in resumes:
            ws.send(json.dumps(resume))

    def _received(self, message: dict[str, Any], frames: list[dict[str, Any]]) -> None:
        with self._lock:
            if message.get("type") == "ride.updated":
                frames.append(message)
                ride_id = message["rideId"]
                self._last[ride_id] = max(self._last.get(ride_id, 0), message["version"])
            elif message.get("type") == "error":
                self.errors.append(message)
                ride_id = message.get("rideId")
                if ride_id in self._watched and message.get("code") != "ride_not_found":
                    self._resume_at[ride_id] = time.monotonic() + self.RESUME_RETRY_S
