"""Project-wide middleware."""

import os
import socket
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ServedByMiddleware:
    """Adds `X-Served-By: <replica>` to every response, so the load balancer's spread is visible."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.name = settings.SERVED_BY or f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["X-Served-By"] = self.name
        return response
