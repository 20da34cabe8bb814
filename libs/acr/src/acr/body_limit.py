"""A cap on request bodies for every service (``ACR_MAX_BODY_BYTES``): a plain ASGI middleware.

A ``Content-Length`` over the cap is refused before the body is read; a chunked body (no length) is counted
as it streams and refused at the first chunk that passes the cap, so no body larger than the cap is ever
held in memory. Both answer 413 ``payload_too_large`` with the usual error body.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acr.settings import Settings, get_settings
from acr.web import error_response

PAYLOAD_TOO_LARGE = 413


def _message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class BodyLimit:
    """Refuse HTTP request bodies over the app's ``max_body_bytes`` (read from the settings the app
    started with)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = _limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = error_response(PAYLOAD_TOO_LARGE, "payload_too_large", _message(limit))
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes an HTTPException raised while it reads the body on to the kernel's
                    # error handlers, which render it as ``payload_too_large``.
                    raise HTTPException(PAYLOAD_TOO_LARGE, _message(limit))
            return message

        await self._app(scope, counted, send)


def _limit(scope: Scope) -> int:
    app = scope.get("app")
    settings: Settings = getattr(getattr(app, "state", None), "settings", None) or get_settings()
    return settings.max_body_bytes


def _content_length(scope: Scope) -> int | None:
    """The declared ``Content-Length``; an unreadable one counts as too large (h11 refuses it anyway)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 1 << 62
    return None
