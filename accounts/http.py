"""Request helpers shared by the pages and the API."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The address login throttling counts against. REMOTE_ADDR unless TRUST_X_FORWARDED_FOR says a
    proxy we run sits in front; then the *last* X-Forwarded-For hop, the one our proxy appended
    (nginx's $proxy_add_x_forwarded_for keeps whatever the client sent in front of it, so the first
    hop is client-controlled and would let anyone pick a fresh address per attempt)."""
    if settings.TRUST_X_FORWARDED_FOR:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops and (address := _valid_ip(hops[-1])):
            return address
    return _valid_ip(request.META.get("REMOTE_ADDR", "")) or "unknown"
