"""The push websocket ``GET /ws?token=``: authenticates, then pumps a ``push.Connection`` to the socket.

Bounded per client: the connections of one rider and of one address are capped (over the cap the
handshake is accepted, then closed 4429 before anything is kept); a connection's frames and its resumes
each have a token bucket (a flood gets a ``rate_limited`` error frame, then a 4429 close); uvicorn refuses
frames over 4 KiB (``acr.serve``); the socket closes 4401 when its token expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fastapi import APIRouter, WebSocket

from acr.serve import WS_MAX_FRAME
from bff.errors import ServiceUnavailable, Unauthorized
from bff.push import CLOSE_TOO_SLOW, Connection, PushHub, TooManyConnections, parse_client_message
from bff.ratelimit import TokenBucket
from bff.state import BffState

log = logging.getLogger(__name__)

router = APIRouter(tags=["push"])

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY = 4429
MAX_FRAME = WS_MAX_FRAME
FRAMES_PER_S, FRAME_BURST = 5.0, 20  # any client frame
RESUMES_PER_S, RESUME_BURST = 0.5, 10  # a resume costs a ride-manager call and a consistent query
WRITER_GRACE_S = 5.0  # how long the last frames may take to go out before a close
CLOSE_TRY_LATER = CLOSE_TOO_SLOW  # 1013, also when the external token issuer's keys could not be fetched


@router.websocket("/ws")
async def push(websocket: WebSocket) -> None:
    """Accept; close 4401 on a bad token (1013 when an external issuer's keys cannot be fetched), 4429 over
    a connection cap; else push the rider's ride versions and ETAs until it leaves, floods or its token
    expires."""
    state: BffState = websocket.app.state.service
    try:  # in a thread: an external issuer's token may need its keys fetched
        rider = await asyncio.to_thread(state.signer.verify, websocket.query_params.get("token"))
    except (Unauthorized, ServiceUnavailable) as refused:
        await websocket.accept()
        unauthorized = isinstance(refused, Unauthorized)
        await websocket.close(code=CLOSE_UNAUTHORIZED if unauthorized else CLOSE_TRY_LATER)
        return
    address = websocket.client.host if websocket.client else "unknown"
    try:
        # Registered before the handshake completes, so nothing published after it is missed.
        connection = state.hub.connect(rider.rider_id, address)
    except TooManyConnections as exc:
        log.info("push connection over the cap: %s", exc)
        await websocket.accept()
        await websocket.close(code=CLOSE_TOO_MANY)
        return
    try:
        await websocket.accept()
        await _serve(websocket, state.hub, connection, rider.expires_at - time.time())
    finally:
        state.hub.disconnect(connection)


async def _serve(websocket: WebSocket, hub: PushHub, connection: Connection, lifetime_s: float) -> None:
    writer = asyncio.create_task(_write(websocket, connection))
    try:
        async with asyncio.timeout(max(0.0, lifetime_s)):
            await _read(websocket, hub, connection, FrameBudget())
    except TimeoutError:
        connection.end(
            CLOSE_UNAUTHORIZED, {"type": "error", "code": "unauthorized", "message": "token expired"}
        )
    try:
        if connection.closing is not None:  # let the writer say why, then close
            await asyncio.wait_for(asyncio.shield(writer), WRITER_GRACE_S)
    except TimeoutError:
        log.debug("websocket writer did not finish its last frames in time")
    finally:
        writer.cancel()


async def _write(websocket: WebSocket, connection: Connection) -> None:
    """Drain the outbox to the socket; close it when asked to (after the frames queued before), or at
    once when the client cannot keep up."""
    try:
        while connection.closing is None:
            await websocket.send_json(await connection.outbox.get())
        while connection.closing != CLOSE_TOO_SLOW and not connection.outbox.empty():
            await websocket.send_json(connection.outbox.get_nowait())
        await websocket.close(code=connection.closing)
    except Exception as exc:  # the client went away: the reader sees the disconnect
        log.debug("websocket writer stopped: %r", exc)


class FrameBudget:
    """A connection's token buckets: one for every frame, one more for resumes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._frames = TokenBucket(FRAMES_PER_S, FRAME_BURST, clock)
        self._resumes = TokenBucket(RESUMES_PER_S, RESUME_BURST, clock)

    def frame(self) -> bool:
        return self._frames.take() == 0

    def resume(self) -> bool:
        return self._resumes.take() == 0


async def _read(websocket: WebSocket, hub: PushHub, connection: Connection, budget: FrameBudget) -> None:
    while connection.closing is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if not budget.frame():
            _flooded(connection, "too many frames")
            return
        text = message.get("text")
        try:
            if not isinstance(text, str) or len(text) > MAX_FRAME:
                raise ValueError("expected a JSON text frame")
            command = parse_client_message(text)
        except ValueError as exc:
            connection.send({"type": "error", "code": "bad_request", "message": str(exc)})
            continue
        if not budget.resume():
            _flooded(connection, "too many resumes")
            return
        await hub.resume(connection, command)


def _flooded(connection: Connection, why: str) -> None:
    connection.end(CLOSE_TOO_MANY, {"type": "error", "code": "rate_limited", "message": why})
