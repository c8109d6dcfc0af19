"""Project-wide middleware."""

import json
import os
import socket
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from shopcart.http_errors import error_page, error_response
from shopcart.request_bodies import INVALID_TEXT_MESSAGE, undecodable_form_fields


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


class RequestBodyMiddleware:
    """Refuses a URL-encoded form with a field that is not UTF-8 text with **400** naming the field (pages
    and API alike; JSON bodies are checked by shopcart.request_bodies). And refuses a body larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE with **413**, before anything reads it,
    in the site's error shapes. Django alone answers 400 (RequestDataTooBig, a SuspiciousOperation,
    raised once a view or the CSRF check reads the body). The site takes no file uploads, so the whole
    body counts. nginx refuses beyond its own `client_max_body_size` first.

    Only the declared Content-Length is looked at: Django never reads past it, so a body cannot be
    larger than it says. (A non-JSON body sent to the API is refused with 415 by shopcart.http_errors.)
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _content_length(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return error_page(
                request,
                status=413,
                code="payload_too_large",
                title="Request too large",
                message=f"The request body is {length} bytes; this site accepts at most {limit}.",
            )
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
        return self.get_response(request)


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
