"""The one place errors become HTTP: which failures mean "a dependency is down", the status code of
each domain error kind, the one JSON error shape of the API, the error page, and the API's exception
handlers (installed on the NinjaAPI by shopcart/api.py)."""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from shopcart import es
from shopcart.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotAuthenticated,
    NotFound,
    Throttled,
    Unavailable,
    Unprocessable,
)
from shopcart.eventbus import EventBusUnavailable
from shopcart.request_bodies import INVALID_TEXT_MESSAGE, UnstorableText, UnsupportedMediaType

logger = logging.getLogger(__name__)

# Exceptions raised when the database, Redis or NATS cannot be reached; each becomes a 503 (Elasticsearch:
# es.is_unavailable). Django raises OperationalError for a server that is down, restarting or read-only (a
# standby), InterfaceError for a connection that broke under it.
DEPENDENCY_ERRORS: dict[type[BaseException], str] = {
    DatabaseOperationalError: "database",
    DatabaseInterfaceError: "database",
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


def unavailable_message(dependency: str) -> str:
    """What the 503 says. A database commit whose answer was lost (its server died at that moment) may have
    been applied, so for the database it does not claim that nothing was changed."""
    outcome = "" if dependency == "database" else "Nothing was changed. "
    return f"A service the shop needs ({dependency}) is not responding. {outcome}Please try again shortly."


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def error_page(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    title: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
) -> HttpResponse:
    """An error in the site's shapes: the JSON error for the API, else the error page in the shop's
    layout (render_page_safely)."""
    if wants_json(request):
        return error_response(status=status, code=code, message=message, fields=fields)
    context = {"status": status, "title": title, "message": message}
    return render_page_safely(request, "errors/error.html", context, status=status)


def _visitor(request: HttpRequest) -> Any:
    """The signed-in user the header names, or an anonymous one when that cannot be known: the session
    unreadable (Redis down: the 503 page), or the request refused before the auth middleware (a 413)."""
    try:
        user = request.user  # type: ignore[attr-defined]
        bool(user.is_authenticated)  # reads the session, once
    except Exception:  # noqa: BLE001 - the header of an error page: anything unreadable is left out
        return AnonymousUser()
    return user


def render_page_safely(request: HttpRequest, template: str, context: dict[str, Any], *, status: int) -> HttpResponse:
    """A page answering an error (404, 410, 413, 503, the CSRF page...) in the shop's layout, header
    included: search, cart and account links, so a visitor who meets it still has the shop. Whatever the
    header cannot read is left out (the visitor: _visitor; the cart count: cart.context_processors), and
    if the page still cannot be rendered with the request, it is rendered without it (no account links):
    an error page must never fail in turn."""
    try:
        html = render_to_string(template, {**context, "user": _visitor(request)}, request=request)
    except Exception:
        logger.warning("error page %s rendered without the request", template, exc_info=True)
        html = render_to_string(template, {**context, "user": AnonymousUser()})
    return HttpResponse(html, status=status)


def error_response(*, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    """`{"error": {"code", "message", "fields"?}}`, the shape of every API error."""
    body: dict[str, object] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return JsonResponse({"error": body}, status=status)


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
# or not JSON (415, below), or a dependency that is down.
COMMON_ERROR_RESPONSES: dict[int, type[Schema]] = {400: ErrorOut, 413: ErrorOut, 415: ErrorOut, 503: ErrorOut}


def _field_errors(errors: list[dict]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        # loc looks like ("body", "payload", "quantity"); the last part names the field.
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        name = ".".join(location) or "__all__"
        fields.setdefault(name, []).append(str(error.get("msg", "Invalid value.")))
    return fields


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(
        status=400, code="invalid", message="Some fields are invalid.", fields=_field_errors(exc.errors)
    )


def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return domain_error_response(exc)


def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(
        status=401, code="not_authenticated", message="A valid 'Authorization: Bearer <token>' header is required."
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(status=404, code="not_found", message=str(exc) or "Not found.")


# Codes for the HTTP errors django-ninja raises itself (say 400 "Cannot parse request body" for bad JSON).
_HTTP_ERROR_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found"}


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, UnsupportedMediaType):  # ninja wraps any parser error in a 400
        sent = str(exc.__cause__)
        return error_response(
            status=415,
            code="unsupported_media_type",
            message=f"Send the body as JSON with 'Content-Type: application/json' (this request "
            f"{f'said {sent}' if sent else 'had no Content-Type'}); a POST may also send a form "
            "(application/x-www-form-urlencoded or multipart/form-data).",
        )
    if isinstance(exc.__cause__, UnstorableText):
        return error_response(
            status=400,
            code="invalid",
            message="Some fields are invalid.",
            fields={name: [INVALID_TEXT_MESSAGE] for name in exc.__cause__.fields},
        )
    return error_response(
        status=exc.status_code, code=_HTTP_ERROR_CODES.get(exc.status_code, "error"), message=str(exc)
    )


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    dependency = unavailable_dependency(exc)
    if dependency is None:
        raise exc  # Django's handler500 logs it and answers with a plain 500 in the same JSON shape.
    response = error_response(
        status=503,
        code="service_unavailable",
        message=unavailable_message(dependency),
    )
    response["Retry-After"] = "5"
    return response


def install_api_error_handlers(api: NinjaAPI) -> None:
    """Every API error in the one shape: field errors, domain kinds, auth, 404, ninja's own HTTP errors,
    and a dependency outage as 503 (anything else stays a 500)."""
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(DomainError, _domain_error)
    api.add_exception_handler(AuthenticationError, _authentication_error)
    api.add_exception_handler(Http404, _not_found)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(Exception, _unexpected)
