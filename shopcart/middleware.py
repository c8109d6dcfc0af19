"""Project-wide middleware."""

import os
import socket
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from shopcart.errors import error_page


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
    """Refuses a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE with **413**, before anything reads it,
    in the site's error shapes. Django alone answers 400 (RequestDataTooBig, a SuspiciousOperation,
    raised once a view or the CSRF check reads the body). The site takes no file uploads, so the whole
    body counts. nginx refuses beyond its own `client_max_body_size` first.

    Only the declared Content-Length is looked at: Django never reads past it, so a body cannot be
    larger than it says. (A non-JSON body sent to the API is refused with 415 by shopcart.api.)
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
        return self.get_response(request)
