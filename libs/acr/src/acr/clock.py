"""Time, one way: aware UTC ``datetime`` in payloads and aggregates, ISO 8601 text only at the edges."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current moment, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``2026-12-03T16:20:59.598Z``: milliseconds, UTC, the form the API and the stores use."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    """The moment an ISO 8601 text names (``Z`` or an offset); raises ``ValueError`` without one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)


def from_timestamp(seconds: float) -> datetime:
    """The moment ``seconds`` after the Unix epoch, in UTC."""
    return datetime.fromtimestamp(seconds, UTC)
