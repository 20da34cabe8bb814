"""The push websocket ``GET /ws?token=``: authenticates, then pumps a ``push.Connection`` to the socket."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket

from bff.errors import Unauthorized
from bff.push import Connection, PushHub, parse_client_message
from bff.state import BffState

log = logging.getLogger(__name__)

router = APIRouter(tags=["push"])

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 1013
MAX_FRAME = 4096


@router.websocket("/ws")
async def push(websocket: WebSocket) -> None:
    """Accept; close 4401 on a bad token; else push the rider's ride versions and ETAs until it leaves."""
    state: BffState = websocket.app.state.service
    try:
        rider = state.signer.verify(websocket.query_params.get("token"))
    except Unauthorized:
        await websocket.accept()
        await websocket.close(code=CLOSE_UNAUTHORIZED)
        return
    # Registered before the handshake completes, so nothing published after it is missed.
    connection = state.hub.connect(rider.rider_id)
    try:
        await websocket.accept()
        await _serve(websocket, state.hub, connection)
    finally:
        state.hub.disconnect(connection)


async def _serve(websocket: WebSocket, hub: PushHub, connection: Connection) -> None:
    writer = asyncio.create_task(_write(websocket, connection))
    try:
        await _read(websocket, hub, connection)
    finally:
        writer.cancel()


async def _write(websocket: WebSocket, connection: Connection) -> None:
    """Drain the outbox to the socket; close it when the client cannot keep up."""
    try:
        while not connection.overflowed.is_set():
            await websocket.send_json(await connection.outbox.get())
        await websocket.close(code=CLOSE_TOO_SLOW)
    except Exception as exc:  # the client went away: the reader sees the disconnect
        log.debug("websocket writer stopped: %r", exc)


async def _read(websocket: WebSocket, hub: PushHub, connection: Connection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        try:
            if not isinstance(text, str) or len(text) > MAX_FRAME:
                raise ValueError("expected a JSON text frame")
            command = parse_client_message(text)
        except ValueError as exc:
            connection.send({"type": "error", "code": "bad_request", "message": str(exc)})
            continue
        await hub.resume(connection, command)
