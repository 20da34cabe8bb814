"""Every service refuses request bodies over ``ACR_MAX_BODY_BYTES`` with 413 ``payload_too_large``: a
declared length before anything is read, a chunked body as soon as its chunks pass the cap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from acr import serve
from acr.service import Service
from acr.settings import Settings

LIMIT = 2048
router = APIRouter()
bodies_read: list[int] = []


@router.post("/v1/echo")
async def echo(request: Request) -> dict[str, int]:
    body = await request.body()
    bodies_read.append(len(body))
    return {"bytes": len(body)}


class Note(BaseModel):
    text: str


@router.post("/v1/notes")
def note(body: Note) -> dict[str, int]:
    return {"length": len(body.text)}


def _client() -> TestClient:
    service = Service("test-svc", lambda runtime: runtime, routers=[router])
    return TestClient(service.app(settings=Settings(max_body_bytes=LIMIT)))


def _chunks(total: int, size: int = 512) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_a_body_within_the_limit_is_served() -> None:
    with _client() as client:
        response = client.post("/v1/echo", content=b"x" * LIMIT)
    assert (response.status_code, response.json()) == (200, {"bytes": LIMIT})


def test_a_declared_length_over_the_limit_is_refused_before_the_route_runs() -> None:
    bodies_read.clear()
    with _client() as client:
        response = client.post("/v1/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert bodies_read == []


def test_a_chunked_body_is_counted_as_it_streams() -> None:
    bodies_read.clear()
    with _client() as client:
        response = client.post("/v1/echo", content=_chunks(10 * LIMIT))
    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "payload_too_large", "message": f"the request body is larger than {LIMIT} bytes"}
    }
    assert bodies_read == []


def test_a_small_chunked_body_passes() -> None:
    with _client() as client:
        response = client.post("/v1/echo", content=_chunks(LIMIT - 100))
    assert response.json() == {"bytes": LIMIT - 100}


def test_uvicorn_refuses_websocket_frames_over_4_kib(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.delenv("ACR_PORT", raising=False)
    serve.main(["bff"])
    assert calls[0]["ws_max_size"] == 4096


def test_a_json_body_read_by_the_framework_is_refused_the_same_way() -> None:
    body = b'{"text": "' + b"x" * (4 * LIMIT) + b'"}'
    with _client() as client:
        response = client.post("/v1/notes", content=iter([body[:1000], body[1000:]]))
    assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")
