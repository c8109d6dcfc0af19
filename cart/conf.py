"""Typed access to the cart's settings (defined, with their environment variables and defaults, in
shopcart/settings/base.py)."""

from __future__ import annotations

from django.conf import settings


def get(name: str) -> int | float | str | bool:
    return getattr(settings, name)


def write_retries() -> int:
    return max(0, int(get("CART_WRITE_RETRIES")))


def max_quantity() -> int:
    return max(1, int(get("CART_MAX_QUANTITY_PER_LINE")))


def default_currency() -> str:
    return str(get("CART_DEFAULT_CURRENCY"))


def summary_ttl() -> int:
    return int(get("CART_SUMMARY_CACHE_TTL"))


def events_stream() -> str:
    return str(get("CART_EVENTS_STREAM"))


def subject_prefix() -> str:
    return str(get("CART_EVENTS_SUBJECT_PREFIX"))


def guest_cart_retention_days() -> int:
    return int(get("CART_GUEST_CART_RETENTION_DAYS"))
