"""The cart's settings by name (defined, with their environment variables, types and defaults, in
shopcart/settings/base.py; validated at start-up by shopcart/checks.py, so no clamping here)."""

from __future__ import annotations

from django.conf import settings


def get(name: str) -> int | float | str | bool:
    return getattr(settings, name)


def write_retries() -> int:
    return settings.CART_WRITE_RETRIES


def max_quantity() -> int:
    return settings.CART_MAX_QUANTITY_PER_LINE


def default_currency() -> str:
    return settings.CART_DEFAULT_CURRENCY


def summary_ttl() -> int:
    return settings.CART_SUMMARY_CACHE_TTL


def events_stream() -> str:
    return settings.CART_EVENTS_STREAM


def subject_prefix() -> str:
    return settings.CART_EVENTS_SUBJECT_PREFIX


def guest_cart_retention_days() -> int:
    return settings.CART_GUEST_CART_RETENTION_DAYS
