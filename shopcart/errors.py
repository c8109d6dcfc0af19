"""The kinds of domain error every app's errors subclass. Plain Python: no HTTP, ninja or NATS here
(shopcart/http_errors.py maps kinds to status codes and renders them)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every app's domain errors. Apps subclass one of the kinds below; the API and the
    pages translate the kind to a status code (shopcart.http_errors.STATUS_FOR_KIND), so services never
    speak HTTP."""

    code = "error"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class Invalid(DomainError):
    code = "invalid"


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Unprocessable(DomainError):
    """Well-formed, but cannot be done as asked (e.g. an Idempotency-Key reused with another request)."""

    code = "unprocessable"


class Unavailable(DomainError):
    """A dependency failed in a way the service has already examined and can describe better than the
    generic "nothing was changed" 503 (e.g. a write whose outcome could not be confirmed)."""

    code = "service_unavailable"


class Throttled(DomainError):
    code = "throttled"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
