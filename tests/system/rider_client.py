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
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

OPS = {"X-Ops-Token": "dev-ops-token"}
LOG_DIR = Path(os.environ.get("ACR_TEST_LOG_DIR", ".run/test-logs"))
TERMINAL = {"PAID", "CANCELLED", "PAYMENT_FAILED"}


@dataclass
class Rider:
    base: str
    rider_id: str
    token: str

    @classmethod
    def sign_up(cls, base: str, name: str) -> Rider:
        response = httpx.post(f"{base}/api/v1/riders", json={"name": name}, timeout=10)
        assert response.status_code == 201, response.text
        body = response.json()
        return cls(base, body["riderId"], body["token"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

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

    def quote(self, pickup: dict[str, Any], dropoff: dict[str, Any]) -> httpx.Response:
        return self._retrying(lambda: self.post("/api/v1/quotes", {"pickup": pickup, "dropoff": dropoff}))

    def book(self, quote_id: str, key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        return self._retrying(lambda: self.post("/api/v1/rides", {"quoteId": quote_id}, headers))

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


class Ops:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}/ops{path}", params=params, headers=OPS, timeout=20)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.base}/ops{path}", json=body, headers=OPS, timeout=20)

    def car(self, car_id: str) -> dict[str, Any]:
        return next(c for c in self.get("/fleet")["cars"] if c["carId"] == car_id)

    def captures(self, ride_id: str) -> list[dict[str, Any]]:
        return [c for c in self.get("/payments", rideId=ride_id)["charges"] if c["type"] == "capture"]

    def wait(self, check: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.5)


@dataclass
class Listener:
    """Collects every websocket message of one rider in a background thread."""

    rider: Rider
    messages: list[dict[str, Any]] = field(default_factory=list)
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
            except ConnectionClosed:
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
                f"version {version} of {ride_id} never pushed: {self.versions(ride_id)}"
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


def book_ride(rider: Rider, rng: random.Random) -> dict[str, Any]:
    """Quote and book a trip between two random addresses; returns the booked ride."""
    pickup, dropoff = random_places(rider, 2, rng)
    quote = rider.quote(pickup, dropoff)
    assert quote.status_code == 201, quote.text
    booked = rider.book(quote.json()["quoteId"])
    assert booked.status_code == 202, booked.text
    return booked.json()  # type: ignore[no-any-return]
