"""Health endpoints and the error handlers for the whole site."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from cart import relay
from shopcart import lifecycle
from shopcart.health import run_checks
from shopcart.http_errors import error_page, render_page_safely, unavailable_dependency, unavailable_message, wants_json
from shopcart.middleware import body_too_large

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No I/O, so a slow dependency never gets a replica restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: every dependency answers. 503 (and the failing names) takes the replica out of rotation.
    Also 503 while this process shuts down (SIGTERM): it finishes what it has and takes nothing new."""
    if lifecycle.is_draining():
        return JsonResponse({"status": "draining", "checks": {}}, status=503)
    results = run_checks()
    ready = all(result.up for result in results)
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {result.name: result.as_dict() for result in results},
        "cart_events": _cart_events(),
    }
    return JsonResponse(body, status=200 if ready else 503)


def _cart_events() -> dict[str, object]:
    """The cart event relay as every replica sees it (cart.relay.status): who leads, how many events wait
    and how long the oldest has. Reported, never judged: a backlog must not take replicas out of rotation."""
    try:
        return relay.status()
    except Exception as exc:  # noqa: BLE001 - reported in the body; the checks say which service is down
        return {"error": f"{type(exc).__name__}: {exc}"}


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(
        request, status=400, code="bad_request", title="Bad request", message="The request could not be understood."
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(
        request, status=403, code="forbidden", title="Forbidden", message="You are not allowed to do that."
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW. Usually not an attack but a form from before the session changed: a product
    opened in one tab, a log-in or log-out in another, then "Add to cart" in the first. The check runs
    before any view, so nothing was done; say so and offer the page again, which brings a fresh token."""
    message = (
        "Your form was not sent because your session changed since the page was loaded (for example, you "
        "logged in or out in another tab, or the page was open for a long time)."
    )
    if wants_json(request):
        return error_page(request, status=403, code="csrf_failed", title="Please try again", message=message)
    referer = request.headers.get("Referer", "")
    same_site = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    context = {
        "message": message,
        "reason": reason,
        "back": referer if referer and same_site else "/",
        "no_cookie": reason == REASON_NO_CSRF_COOKIE,
    }
    return render_page_safely(request, "errors/csrf_failure.html", context, status=403)


@require_safe
def request_too_large(request: HttpRequest) -> HttpResponse:
    """The 413 page nginx shows (its `error_page 413`, asked for with GET, without the body it refused)
    for a body past its client_max_body_size: the shop's page, not nginx's bare one."""
    return body_too_large(request, length=None, limit=settings.LONG_FORM_BODY_LIMIT)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(
        request, status=404, code="not_found", title="Not found", message="There is nothing at this address."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """Django calls this for any uncaught exception, including ones raised in middleware (say, the
    session store failing): a dependency outage becomes a readable 503, anything else a plain 500."""
    exc = sys.exc_info()[1]
    dependency = unavailable_dependency(exc)
    if dependency is None:
        return error_page(
            request,
            status=500,
            code="server_error",
            title="Something went wrong",
            message="Please try again in a moment.",
        )
    logger.warning("%s unavailable while serving %s: %r", dependency, request.path, exc)
    response = error_page(
        request,
        status=503,
        code="service_unavailable",
        title="Temporarily unavailable",
        message=unavailable_message(dependency),
    )
    response["Retry-After"] = "5"
    return response
