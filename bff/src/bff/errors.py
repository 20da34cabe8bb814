"""The BFF's refusals: each a ``ServiceError`` with the HTTP status and docs/api.md code it is rendered with.

Free of FastAPI so domain modules (auth, push, consistency) can raise and catch them; the kernel renders
every ``ServiceError`` as ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from acr.errors import DependencyUnavailable, ServiceError


class Unauthorized(ServiceError):
    """Missing, malformed, forged or expired credentials."""

    status, code = 401, "unauthorized"

    def __init__(self, message: str = "missing or invalid token") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class OpsUnauthorized(ServiceError):
    """Missing or wrong ``X-Ops-Token``."""

    status, code = 401, "unauthorized"

    def __init__(self) -> None:
        super().__init__("missing or invalid X-Ops-Token")


class RateLimited(ServiceError):
    """The caller exceeded its request budget."""

    status, code = 429, "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many requests", headers={"Retry-After": str(retry_after_s)})


class ServiceUnavailable(DependencyUnavailable):
    """A service the BFF needs did not answer (connection error, timeout or 5xx)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is unavailable")
        self.service = service


class UpstreamError(ServiceError):
    """A 4xx answer of another service, passed through unchanged (same status, code, message, headers)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status=status, code=code, headers=headers)


class RideNotFound(ServiceError):
    """No such ride for this caller (or an id no ride can have)."""

    status, code = 404, "ride_not_found"


class IdempotencyKeyRequired(ServiceError):
    """No ``Idempotency-Key`` header: the kernel answers it for the required header (``acr.web``)."""

    status, code = 400, "idempotency_key_required"


class BadConsistencyToken(ServiceError):
    """An ``ACR-Consistency-Token`` this API did not issue (its schema cannot tell)."""

    status, code = 400, "invalid_consistency_token"


# What ride-manager and address-finder refuse with, passed on unchanged (``UpstreamError``).
ADDRESS_NOT_FOUND = (404, "address_not_found")
QUOTE_NOT_FOUND = (404, "quote_not_found")
OUTSIDE_SERVICE_AREA = (422, "outside_service_area")
INVALID_CURSOR = (422, "invalid_cursor")
NO_CAR_AVAILABLE = (409, "no_car_available")
TOO_MANY_ACTIVE_RIDES = (409, "too_many_active_rides")
NOT_CANCELLABLE = (409, "not_cancellable")
BOOKING_REFUSED = ((409, "quote_expired"), (409, "quote_already_used"), (409, "idempotency_key_conflict"))
