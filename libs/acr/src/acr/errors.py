"""The one error a caller sees: ``{"error": {"code", "message"}}`` with an HTTP status.

Free of FastAPI so domain modules can raise it: a domain refusal subclasses ``ServiceError`` and says how
a caller should read it (``status``: 404 not found, 409 conflict with the state, 422 invalid...) and its
snake_case ``code``. ``acr.web`` renders every one the same way.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with a status, a code and a human message (and headers such as ``Retry-After``)."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else type(self).status
        self.code = code if code is not None else type(self).code
        self.headers = headers


class NotFound(ServiceError):
    status, code = 404, "not_found"


class ValidationFailed(ServiceError):
    status, code = 422, "validation_error"


class DependencyUnavailable(ServiceError):
    """A service or store this one needs did not answer."""

    status, code = 503, "dependency_unavailable"
