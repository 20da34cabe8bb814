"""Attacks by flooding (issue #14, "Bounded clients"): each is refused, changes no state, and leaves the BFF
serving other riders. They run on an attack stack of their own with the shipped sign-up limit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import psutil
import pytest
from rider_client import Ops, Rider
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from acr.settings import Settings
from acr_stack import Stack

pytestmark = pytest.mark.system

SHIPPED = Settings()
STACK_SETTINGS = {
    "ACR_SIGNUP_BURST": str(SHIPPED.signup_burst),
    "ACR_SIGNUPS_PER_MINUTE": str(SHIPPED.signups_per_minute),
}
SOCKETS, BATCH = 10_000, 250
MIB = 1 << 20
CLOSE_TOO_MANY, CLOSE_TOO_BIG = 4429, 1009


@pytest.fixture(scope="module")
def bff(attack_stack: Stack) -> str:
    return attack_stack.config.url("bff")


@pytest.fixture(scope="module")
def riders(bff: str) -> dict[str, Rider]:
    """Every rider the module needs, signed up before the sign-up flood spends the address's budget."""
    return {name: Rider.sign_up(bff, name) for name in ("Flooder", "Bystander", "Booker", "Big")}


def _ws_url(rider: Rider) -> str:
    return f"{rider.base.replace('http', 'ws', 1)}/ws?token={rider.token}"


def _rss_mib(stack: Stack) -> float:
    return float(psutil.Process(stack.pids()["bff"]).memory_info().rss) / MIB


async def _open(url: str, held: list[Any]) -> None:
    """Open one socket and keep it open in ``held`` (the client never closes it before the end)."""
    socket = await connect(url, open_timeout=60, max_size=None)
    held.append(socket)
    try:
        await asyncio.wait_for(socket.wait_closed(), 0.5)
    except TimeoutError:
        return  # still open for now: served, or its close 4429 is on its way


async def _flood(url: str) -> tuple[int, int]:
    """Open ``SOCKETS`` sockets, ``BATCH`` at a time, none closed by the client; then count those the BFF
    still serves and check every other one was closed 4429."""
    held: list[Any] = []
    try:
        for _ in range(SOCKETS // BATCH):
            await asyncio.gather(*(_open(url, held) for _ in range(BATCH)))
        await asyncio.sleep(3)  # the last refusals' closes arrive
        served = [socket for socket in held if socket.close_code is None]
        codes = {socket.close_code for socket in held if socket.close_code is not None}
        assert codes == {CLOSE_TOO_MANY}, codes
        return len(served), len(held) - len(served)
    finally:
        await asyncio.gather(*(socket.close() for socket in held))


def _resume_frames_still_work(rider: Rider, ride_id: str) -> str:
    """A fresh socket of ``rider`` is served: a resume is answered (``ride_not_found`` for a foreign ride)."""
    with rider.websocket() as socket:
        socket.send('{"type": "resume", "rideId": "' + ride_id + '", "afterVersion": 0}')
        answer: str = socket.recv(timeout=10)  # type: ignore[assignment]
    return answer


T = TypeVar("T")


def _run(flood: Coroutine[Any, Any, T]) -> T:
    """Run ``flood`` on an event loop of its own thread: the session's browser tests keep one running in
    this thread (Playwright's sync API), where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, flood).result()


def test_ten_thousand_websockets_from_one_token(attack_stack: Stack, riders: dict[str, Rider]) -> None:
    flooder, bystander = riders["Flooder"], riders["Bystander"]
    before = _rss_mib(attack_stack)
    started = time.monotonic()
    served, refused = _run(_flood(_ws_url(flooder)))
    assert served <= SHIPPED.ws_per_rider, f"{served} sockets of one rider served"
    assert served + refused == SOCKETS
    assert _rss_mib(attack_stack) - before < 64, "the hub's memory grew with the flood"
    assert "ride_not_found" in _resume_frames_still_work(bystander, "ride_nobody")
    assert bystander.me()["riderId"] == bystander.rider_id
    print(f"{SOCKETS} sockets in {time.monotonic() - started:.0f} s: {served} served, {refused} closed 4429")


def test_a_resume_flood(riders: dict[str, Rider]) -> None:
    flooder = riders["Flooder"]
    frame = '{"type": "resume", "rideId": "ride_someone_elses", "afterVersion": 0}'
    answers: list[str] = []
    with flooder.websocket() as socket:
        for _ in range(500):
            try:
                socket.send(frame)
            except ConnectionClosed:
                break
        try:
            while True:
                answers.append(socket.recv(timeout=10))  # type: ignore[arg-type]
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == CLOSE_TOO_MANY
    assert '"rate_limited"' in answers[-1]
    assert sum('"ride_not_found"' in a for a in answers) <= 10 + 1  # the resume budget, not 500 calls
    assert "ride_not_found" in _resume_frames_still_work(flooder, "ride_someone_elses")


def test_a_one_mib_frame(riders: dict[str, Rider]) -> None:
    big = riders["Big"]
    with big.websocket() as socket:
        socket.send("x" * MIB)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_TOO_BIG
    assert "ride_not_found" in _resume_frames_still_work(big, "ride_nobody")


def test_a_ten_mib_body(attack_stack: Stack, riders: dict[str, Rider]) -> None:
    big = riders["Big"]
    rides_before = big.get("/api/v1/rides").json()
    body = b'{"quoteId": "' + b"q" * (10 * MIB) + b'"}'
    chunks = (body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024))
    headers = big.headers | {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
    targets = [
        ("declared", f"{big.base}/api/v1/rides", body),
        ("chunked", f"{big.base}/api/v1/rides", chunks),
        ("internal", f"{attack_stack.config.url('ride-manager')}/v1/rides", body),
    ]
    for how, url, content in targets:
        answer = httpx.post(url, content=content, headers=headers, timeout=30)
        assert answer.status_code == 413, (how, answer.text[:200])
        assert answer.json()["error"]["code"] == "payload_too_large"
    assert big.get("/api/v1/rides").json() == rides_before


def _points(rider: Rider) -> tuple[dict[str, float], dict[str, float]]:
    min_lon, min_lat, max_lon, max_lat = rider.get("/api/v1/map", bbox="-180,-90,180,90", zoom=1).json()[
        "bounds"
    ]
    return (
        {"lat": min_lat + (max_lat - min_lat) * 0.4, "lon": min_lon + (max_lon - min_lon) * 0.4},
        {"lat": min_lat + (max_lat - min_lat) * 0.6, "lon": min_lon + (max_lon - min_lon) * 0.6},
    )


def test_one_rider_cannot_keep_the_fleet_reserved(attack_stack: Stack, riders: dict[str, Rider]) -> None:
    booker, ops = riders["Booker"], Ops.of(attack_stack)
    pickup, dropoff = _points(booker)
    booked = []
    for _ in range(SHIPPED.max_active_rides):
        answer = booker.book(booker.quote(pickup, dropoff).json()["quoteId"])
        assert answer.status_code == 202, answer.text
        booked.append(answer.json()["rideId"])

    def in_flight() -> set[str]:  # the ops list is a read model: it follows the bookings a moment later
        return {
            r["rideId"] for r in ops.get("/rides", active="true")["rides"] if r["riderId"] == booker.rider_id
        }

    ops.wait(lambda: in_flight() == set(booked), what="the booked rides in flight")
    refused = booker.book(booker.quote(pickup, dropoff).json()["quoteId"])
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "too_many_active_rides")
    time.sleep(2)  # a ride the refusal had made anyway would be listed by now
    assert in_flight() == set(booked)
    cancel = booker.post(f"/api/v1/rides/{booked[0]}/cancel")
    assert cancel.status_code == 202, cancel.text
    again = booker.book(booker.quote(pickup, dropoff).json()["quoteId"])  # a ride ended: a slot is free
    assert again.status_code == 202, again.text


def test_a_thousand_sign_ups_from_one_address(riders: dict[str, Rider], bff: str) -> None:
    async def sign_ups() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=bff, timeout=30, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/api/v1/riders", json={"name": f"Bot {n}"}) for n in range(1000))
            )

    started = time.monotonic()
    answers = _run(sign_ups())
    minutes = (time.monotonic() - started) / 60
    created = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 429]
    assert len(created) + len(refused) == 1000
    # at most the burst (the bucket never saves more), and the few that come back while the flood lasts
    assert 0 < len(created) <= SHIPPED.signup_burst + 1 + SHIPPED.signups_per_minute * minutes
    assert all(
        a.json()["error"]["code"] == "rate_limited" and int(a.headers["Retry-After"]) >= 1 for a in refused
    )
    assert riders["Bystander"].me()["riderId"] == riders["Bystander"].rider_id  # riders still served


def test_guessing_the_ops_token(attack_stack: Stack, riders: dict[str, Rider], bff: str) -> None:
    """Last: it locks this address out of /ops for minutes."""
    for n in range(SHIPPED.ops_guesses):
        guess = httpx.get(f"{bff}/ops/fleet", headers={"X-Ops-Token": f"guess-{n}"}, timeout=10)
        assert guess.status_code == 401, guess.text
    locked = httpx.get(f"{bff}/ops/fleet", headers=Ops.of(attack_stack).headers, timeout=10)  # the right one
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert riders["Bystander"].me()["riderId"] == riders["Bystander"].rider_id
