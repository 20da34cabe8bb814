"""W3C trace context in the CloudEvent ``traceparent`` extension.

An event recorded while a consumer handles another continues that event's trace (the consumer binds the
incoming ``traceparent`` for the duration of the handler). Other hops (HTTP calls between services, the
telemetry stream, the websocket push) do not carry it yet: their events start a new trace.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
current_traceparent: ContextVar[str | None] = ContextVar("current_traceparent", default=None)


def trace_id(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a traceparent, or None if it is absent or malformed."""
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None


def child_traceparent(parent: str | None = None) -> str:
    """A traceparent for a new span: same trace as ``parent`` (or the current one), new span id."""
    tid = trace_id(parent or current_traceparent.get()) or secrets.token_hex(16)
    return f"00-{tid}-{secrets.token_hex(8)}-01"
