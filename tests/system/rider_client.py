"""A small client of the BFF's public API, as the app would use it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect


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

    def quote(self, pickup: dict[str, Any], dropoff: dict[str, Any]) -> httpx.Response:
        return self.post("/api/v1/quotes", {"pickup": pickup, "dropoff": dropoff})

    def book(self, quote_id: str, key: str | None = None) -> httpx.Response:
        return self.post("/api/v1/rides", {"quoteId": quote_id}, {"Idempotency-Key": key or uuid.uuid4().hex})

    def websocket(self) -> ClientConnection:
        return connect(f"{self.base.replace('http', 'ws', 1)}/ws?token={self.token}", open_timeout=10)


def receive(ws: ClientConnection, timeout_s: float) -> dict[str, Any] | None:
    try:
        return json.loads(ws.recv(timeout=timeout_s))  # type: ignore[no-any-return]
    except TimeoutError:
        return None
