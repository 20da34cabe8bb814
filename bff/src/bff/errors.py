"""The BFF's domain errors: each carries the HTTP status and docs/api.md code it is rendered with.

Kept free of fastapi so domain modules (auth, push, consistency) can raise and catch them;
bootstrap maps them onto the ``{"error": {"code", "message"}}`` shape.
"""

from __future__ import annotations


class BffError(Exception):
    """An error the API shows as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class Unauthorized(BffError):
    """Missing, malformed, forged or expired credentials."""

    def __init__(self, message: str = "missing or invalid token") -> None:
        super().__init__(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


class OpsUnauthorized(BffError):
    """Missing or wrong ``X-Ops-Token``."""

    def __init__(self) -> None:
        super().__init__(401, "unauthorized", "missing or invalid X-Ops-Token")


class RateLimited(BffError):
    """The caller exceeded its request budget."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(429, "rate_limited", "too many requests", {"Retry-After": str(retry_after_s)})


class DependencyUnavailable(BffError):
    """A service the BFF needs did not answer (connection error, timeout or 5xx)."""

    def __init__(self, service: str) -> None:
        super().__init__(503, "dependency_unavailable", f"{service} is unavailable")
        self.service = service


class UpstreamError(BffError):
    """A 4xx answer of another service, passed through unchanged (same status, code and message)."""


class NotFound(BffError):
    """A resource that does not exist for this caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(404, code, message)
