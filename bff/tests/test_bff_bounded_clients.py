"""Bounded clients (docs/security.md): token buckets, connection caps, resume budgets, ops guesses, sign-ups,
the per-connection tables, and a socket that closes when its token expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bff_fakes import OPS, SETTINGS, error_of, ride_json, token_for
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from acr.errors import NotFound
from acr.service import Runtime
from bff import ws
from bff.auth import new_rider_id
from bff.bootstrap import SERVICE, assemble
from bff.push import Connection, ConnectionCaps, PushHub, Resume, TooManyConnections
from bff.ratelimit import RateLimiter, TokenBucket
from bff.state import BffState, Dependencies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def app_client(deps: Dependencies, **settings: Any) -> TestClient:
    def wire(runtime: Runtime) -> BffState:
        return assemble(runtime, deps)

    return TestClient(SERVICE.app(settings=SETTINGS.model_copy(update=settings), wire=wire))


# --- token buckets ---------------------------------------------------------------------------------------
def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0.5, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [0, 0, 0, 2]
    assert bucket.retry_after() == 2  # asking spends nothing
    clock.now += 2
    assert bucket.take() == 0 and bucket.take() == 2
    clock.now += 3600
    assert [bucket.take() for _ in range(4)] == [0, 0, 0, 2]  # never more than the burst saved


def test_a_limiter_keeps_one_bucket_per_key_and_forgets_the_least_recent() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=2, clock=Clock())
    assert (limiter.acquire("a"), limiter.acquire("a"), limiter.acquire("b")) == (0, 1, 0)
    assert limiter.retry_after("a") == 1 and limiter.retry_after("never-seen") == 0
    limiter.acquire("c")  # "a" is forgotten: the table stays at 2 keys
    assert limiter.retry_after("a") == 0


# --- sign-ups and ops guesses per client address --------------------------------------------------------
def test_sign_ups_from_one_address_are_limited(deps: Dependencies) -> None:
    with app_client(deps, signup_burst=3, signups_per_minute=1) as client:
        answers = [client.post("/api/v1/riders", json={"name": f"Bot {n}"}) for n in range(5)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert int(answers[3].headers["Retry-After"]) == 60
    error_of(answers[4], 429, "rate_limited")


def test_wrong_ops_token_guesses_lock_the_address_out_even_for_the_right_token(deps: Dependencies) -> None:
    with app_client(deps, ops_guesses=3) as client:
        for _ in range(5):
            error_of(client.get("/ops/fleet"), 401, "unauthorized")  # no token: no guess
        assert client.get("/ops/fleet", headers=OPS).status_code == 200
        for n in range(3):
            error_of(client.get("/ops/fleet", headers={"X-Ops-Token": f"guess-{n}"}), 401, "unauthorized")
        locked = client.get("/ops/fleet", headers=OPS)
        error_of(locked, 429, "rate_limited")
        assert 1 <= int(locked.headers["Retry-After"]) <= 60


def test_guesses_at_the_kernels_ops_routes_spend_the_same_budget(deps: Dependencies) -> None:
    with app_client(deps, ops_guesses=3) as client:
        assert client.get("/v1/ops/replica", headers=OPS).status_code == 200
        error_of(client.get("/metrics"), 401, "unauthorized")  # no credential: no guess
        error_of(client.get("/metrics", headers={"Authorization": "Bearer guess-0"}), 401, "unauthorized")
        error_of(client.get("/v1/ops/stats", headers={"X-Ops-Token": "guess-1"}), 401, "unauthorized")
        error_of(client.get("/ops/fleet", headers={"X-Ops-Token": "guess-2"}), 401, "unauthorized")
        for path in ("/metrics", "/v1/ops/stats", "/ops/fleet"):  # one budget, even for the right token
            locked = client.get(path, headers=OPS)
            error_of(locked, 429, "rate_limited")
            assert 1 <= int(locked.headers["Retry-After"]) <= 60
        assert client.get("/healthz").status_code in (200, 503)  # the open route stays open


# --- the push hub ---------------------------------------------------------------------------------------
class CountingHistory:
    """Versions of the rides of ``rdr_a``; a fetch waits for ``release`` so fetches can overlap."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.release = asyncio.Event()

    async def versions(self, rider_id: str, ride_id: str, after_version: int) -> list[dict[str, Any]]:
        self.calls.append((rider_id, ride_id, after_version))
        await self.release.wait()
        if rider_id != "rdr_a" or not ride_id.startswith("mine"):
            raise NotFound("no such ride")
        return [ride_json(ride_id, rider_id, n) for n in (1, 2) if n > after_version]


def test_connections_are_capped_per_rider_and_per_address_and_refusals_keep_nothing() -> None:
    hub = PushHub(CountingHistory(), caps=ConnectionCaps(per_rider=2, per_address=3))
    first, _ = hub.connect("rdr_a", "10.0.0.1"), hub.connect("rdr_a", "10.0.0.1")
    with pytest.raises(TooManyConnections):
        hub.connect("rdr_a", "10.0.0.2")
    hub.connect("rdr_b", "10.0.0.1")
    with pytest.raises(TooManyConnections):
        hub.connect("rdr_c", "10.0.0.1")
    assert hub.connection_count() == 3
    hub.disconnect(first)
    hub.disconnect(first)  # twice: counted once
    hub.connect("rdr_c", "10.0.0.1")
    assert hub.connection_count() == 3


def test_a_foreign_ride_named_in_a_resume_leaves_nothing_behind() -> None:
    async def scenario() -> tuple[int, str | None, list[dict[str, Any]]]:
        history = CountingHistory()
        history.release.set()
        hub = PushHub(history)
        connection = hub.connect("rdr_a")
        for n in range(50):
            await hub.resume(connection, Resume(f"someone-elses-{n}", 0))
        errors = [connection.outbox.get_nowait() for _ in range(50)]
        return connection.rides_kept(), await hub.owner_of("someone-elses-0"), errors

    kept, owner, errors = asyncio.run(scenario())
    assert (kept, owner) == (0, None)
    assert {e["code"] for e in errors} == {"ride_not_found"}


def test_identical_resumes_in_flight_share_one_fetch() -> None:
    async def scenario() -> tuple[list[tuple[str, str, int]], list[list[int]], int]:
        history = CountingHistory()
        hub = PushHub(history)
        connections = [hub.connect("rdr_a") for _ in range(3)]
        resumes = [asyncio.create_task(hub.resume(c, Resume("mine-1", 0))) for c in connections]
        await asyncio.sleep(0.01)
        history.release.set()
        await asyncio.gather(*resumes)
        sent = [[c.outbox.get_nowait()["version"] for _ in range(2)] for c in connections]
        return history.calls, sent, hub.fetches_in_flight()

    calls, sent, in_flight = asyncio.run(scenario())
    assert calls == [("rdr_a", "mine-1", 0)]
    assert sent == [[1, 2]] * 3 and in_flight == 0


def test_a_connection_keeps_at_most_its_cap_of_rides() -> None:
    connection = Connection("rdr_a", max_rides=4)
    for n in range(10):
        connection.lock(f"ride_{n}")
        connection.send_ride(f"ride_{n}", ride_json(f"ride_{n}", "rdr_a", 1))
    assert connection.rides_kept() == 4
    assert connection.last_sent("ride_9") == 1 and connection.last_sent("ride_0") is None


# --- the websocket --------------------------------------------------------------------------------------
@pytest.fixture
def small_caps(deps: Dependencies) -> Iterator[TestClient]:
    with app_client(deps, ws_per_rider=2) as client:
        yield client


def test_a_connection_over_the_riders_cap_is_closed_4429(small_caps: TestClient) -> None:
    url = f"/ws?token={token_for(new_rider_id())}"
    with small_caps.websocket_connect(url), small_caps.websocket_connect(url):
        with small_caps.websocket_connect(url) as third, pytest.raises(WebSocketDisconnect) as closed:
            third.receive_json()
        assert closed.value.code == ws.CLOSE_TOO_MANY
        state: BffState = small_caps.app.state.service  # type: ignore[attr-defined]
        assert state.hub.connection_count() == 2
    with small_caps.websocket_connect(url) as again:  # the others closed: room again
        again.send_text("not json")
        assert again.receive_json()["code"] == "bad_request"


def test_a_frame_flood_gets_rate_limited_then_a_4429_close(client: TestClient) -> None:
    with client.websocket_connect(f"/ws?token={token_for(new_rider_id())}") as socket:
        for _ in range(ws.FRAME_BURST + 1):
            socket.send_text("x")
        codes = [socket.receive_json()["code"] for _ in range(ws.FRAME_BURST + 1)]
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert codes == ["bad_request"] * ws.FRAME_BURST + ["rate_limited"]
    assert closed.value.code == ws.CLOSE_TOO_MANY


def test_a_resume_flood_is_cut_at_its_own_budget(client: TestClient, deps: Dependencies) -> None:
    rider_id = new_rider_id()
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as socket:
        for _ in range(ws.RESUME_BURST + 1):
            socket.send_json({"type": "resume", "rideId": "ride_nobody", "afterVersion": 0})
        codes = [socket.receive_json()["code"] for _ in range(ws.RESUME_BURST + 1)]
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert codes == ["ride_not_found"] * ws.RESUME_BURST + ["rate_limited"]
    assert closed.value.code == ws.CLOSE_TOO_MANY
    assert len(deps.ride_manager.version_calls) == ws.RESUME_BURST  # type: ignore[attr-defined]


def test_the_socket_closes_4401_when_its_token_expires(client: TestClient) -> None:
    started = time.monotonic()
    with client.websocket_connect(f"/ws?token={token_for(new_rider_id(), ttl_s=2)}") as socket:
        assert socket.receive_json() == {"type": "error", "code": "unauthorized", "message": "token expired"}
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == ws.CLOSE_UNAUTHORIZED
    assert 0.5 < time.monotonic() - started < 5
