"""Project-wide middleware."""

import json
import os
import socket
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from shopcart.http_errors import error_page, error_response
from shopcart.request_bodies import INVALID_TEXT_MESSAGE, body_limit, undecodable_form_fields


class ServedByMiddleware:
    """Adds `X-Served-By: <replica>` to every response, so the load balancer's spread is visible."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.name = settings.SERVED_BY or f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["X-Served-By"] = self.name
        return response


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def body_too_large(request: HttpRequest, *, length: int | None, limit: int) -> HttpResponse:
    """The 413 in the site's shapes: the API's JSON error, or a page that says nothing was saved and how
    to get the typing back (the browser's Back button keeps a form's fields)."""
    size = f"The request body is {length:,} bytes" if length is not None else "The request body is too large"
    if request.path.startswith("/api/"):
        message = f"{size}; this site accepts at most {limit:,}."
    else:
        message = (
            f"{size}; this shop accepts at most {limit:,}. Nothing was saved. Go back: your browser still "
            "has what you typed. Then shorten the longest text and send it again."
        )
    return error_page(request, status=413, code="payload_too_large", title="Request too large", message=message)


class RequestBodyMiddleware:
    """Refuses a body larger than the view's limit with **413** before anything reads it, in the site's
    error shapes: REQUEST_BODY_LIMIT, or LONG_FORM_BODY_LIMIT for a page marked
    shopcart.request_bodies.takes_long_text (Django alone would answer 400: RequestDataTooBig, once the
    CSRF check or a view read the body). And refuses a URL-encoded form with a field that is not UTF-8 text
    with **400** naming the field (pages and API alike; JSON bodies are checked by shopcart.request_bodies).
    The site takes no file uploads, so the whole body counts. nginx refuses beyond its own
    `client_max_body_size` first. Here, in process_view, because the limit is the view's: it runs before
    every view (the CSRF middleware's process_view included, which reads the form), never for an address
    without one (a 404 never reads the body).

    Only the declared Content-Length is looked at: Django never reads past it, so a body cannot be
    larger than it says. (A non-JSON body sent to the API is refused with 415 by shopcart.http_errors.)
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        length, limit = _content_length(request), body_limit(view)
        if length > limit:
            return body_too_large(request, length=length, limit=limit)
        is_form = (request.content_type or "").lower() == "application/x-www-form-urlencoded"
        if fields := (undecodable_form_fields(request.body) if is_form and length else []):
            return error_page(
                request,
                status=400,
                code="invalid",
                title="Bad request",
                message=f"Not valid text in: {', '.join(fields)}. {INVALID_TEXT_MESSAGE}",
                fields={name: [INVALID_TEXT_MESSAGE] for name in fields},
            )
        return None


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class ApiMethodMiddleware:
    """Every /api/ answer is JSON, method errors included, and every GET route answers HEAD.

    * HEAD on an API route runs its GET operation (django-ninja only knows the methods it was given)
      and answers with the same status and headers, without the body.
    * A method the route does not have is 405 in the one error shape, with the `Allow` header
      (django-ninja's own is a plain-text "Method not allowed").
    The pages use Django's `require_safe`, which allows GET and HEAD.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _is_api(request):
            return self.get_response(request)
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        response = self.get_response(request)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = [method.strip() for method in response.get("Allow", "").split(",") if method.strip()]
            if "GET" in allowed and "HEAD" not in allowed:
                allowed.append("HEAD")
            original_method = "HEAD" if head else request.method
            response = error_response(
                status=405,
                code="method_not_allowed",
                message=f"{original_method} is not allowed here; use {' or '.join(allowed) or 'another method'}.",
            )
            response["Allow"] = ", ".join(allowed)
        if head:
            request.method = "HEAD"
            # The headers GET would send, Content-Length included, and no body (RFC 9110, 9.3.2).
            if not response.streaming:
                response["Content-Length"] = str(len(response.content))
                response.content = b""
        return response


# The original's clients (docs/original-api.md): the same routes under this prefix answer in its envelope.
ORIGINAL_API_PREFIX = "/api/v0/"
# Headers of the answer that still apply to the re-shaped body.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Cache-Control", "Expires", "Vary")


def original_envelope(response: HttpResponse) -> HttpResponse:
    """`{"success": true, "message", "payload": <our body>}`, or for an error
    `{"success": "false", "message": <error.message>, "payload": {}}` (the string "false" is the original's),
    with the same status code. Anything that is not a JSON body (a 204, the docs page) is left as it is."""
    if response.streaming or not response.get("Content-Type", "").startswith("application/json"):
        return response
    body = json.loads(response.content)
    if response.status_code < 400:
        wrapped = {"success": True, "message": response.reason_phrase, "payload": body}
    else:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        wrapped = {"success": "false", "message": error.get("message", response.reason_phrase), "payload": {}}
    enveloped = JsonResponse(wrapped, status=response.status_code)
    for name in _KEPT_HEADERS:
        if name in response:
            enveloped[name] = response[name]
    return enveloped


class OriginalApiMiddleware:
    """`/api/v0/<route>` is `/api/<route>` answered in the original's envelope, so a client written for the
    original only changes its base URL. Outside the other middleware, so a 405 or 413 is wrapped too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(ORIGINAL_API_PREFIX):
            return self.get_response(request)
        request.path_info = "/api/" + request.path_info.removeprefix(ORIGINAL_API_PREFIX)
        request.path = request.path.replace(ORIGINAL_API_PREFIX, "/api/", 1)
        return original_envelope(self.get_response(request))
