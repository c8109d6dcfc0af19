"""Which failures mean "a dependency is down", and the one JSON error shape of the API."""

from __future__ import annotations

import redis.exceptions
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from ninja import Schema

from shopcart import es
from shopcart.eventbus import EventBusUnavailable

# Exceptions raised when Redis or NATS cannot be reached; each becomes a 503 (Elasticsearch: es.is_unavailable).
DEPENDENCY_ERRORS: dict[type[BaseException], str] = {
    redis.exceptions.ConnectionError: "redis",
    redis.exceptions.TimeoutError: "redis",
    EventBusUnavailable: "nats",
}


def unavailable_dependency(exc: BaseException | None) -> str | None:
    """The name of the dependency whose failure `exc` reports, or None if it is something else. The one
    place that decides what becomes the dependency-down 503 (API, pages and sessions all ask it)."""
    if es.is_unavailable(exc):
        return "elasticsearch"
    for exc_type, name in DEPENDENCY_ERRORS.items():
        if isinstance(exc, exc_type):
            return name
    return None


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def error_page(request: HttpRequest, *, status: int, code: str, title: str, message: str) -> HttpResponse:
    """An error in the site's shapes: the JSON error for the API, else the plain error page. Rendered
    without a request context: an error page must not need the session (Redis may be down)."""
    if wants_json(request):
        return error_response(status=status, code=code, message=message)
    html = render_to_string("errors/error.html", {"status": status, "title": title, "message": message})
    return HttpResponse(html, status=status)


def error_response(*, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    """`{"error": {"code", "message", "fields"?}}`, the shape of every API error."""
    body: dict[str, object] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return JsonResponse({"error": body}, status=status)


class DomainError(Exception):
    """Base of every app's domain errors. Apps subclass one of the kinds below; the API and the
    pages translate the kind to a status code (see STATUS_FOR_KIND), so services never speak HTTP."""

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


STATUS_FOR_KIND: dict[type[DomainError], int] = {
    Invalid: 400,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    Throttled: 429,
    Unavailable: 503,
}


def status_for(error: DomainError) -> int:
    for kind, status in STATUS_FOR_KIND.items():
        if isinstance(error, kind):
            return status
    return 400


def domain_error_response(error: DomainError) -> JsonResponse:
    response = error_response(status=status_for(error), code=error.code, message=error.message, fields=error.fields)
    if isinstance(error, Throttled):
        response["Retry-After"] = str(error.retry_after)
    elif isinstance(error, Unavailable):
        response["Retry-After"] = "5"
    return response


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class ErrorOut(Schema):
    """The documented shape of every API error, for the OpenAPI schema."""

    error: ErrorBody


# Responses any API operation may give: a malformed request, a body too large (413, shopcart.middleware)
# or not JSON (415, shopcart.api), or a dependency that is down.
COMMON_ERROR_RESPONSES: dict[int, type[Schema]] = {400: ErrorOut, 413: ErrorOut, 415: ErrorOut, 503: ErrorOut}
