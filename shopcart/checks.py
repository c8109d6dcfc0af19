"""A Django system check of the shop's own settings. Django runs it before `migrate` (so `make run` and
`make dev` stop on a bad value before any replica starts), `runserver` and `manage.py check`: a value
that parses but makes no sense (a negative retry count, a zero timeout, a currency the shop cannot show)
is refused with the setting's name instead of misbehaving later. Settings are read one way:
`settings.NAME`, typed by shopcart/settings/base.py (env.int, env.float, ...) and validated here."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from shopcart.money import CURRENCIES

# Whole numbers and their smallest sane value.
MIN_INT: dict[str, int] = {
    "API_TOKEN_TTL": 1,
    "LOGIN_FAILURE_LIMIT": 1,
    "LOGIN_FAILURE_WINDOW": 1,
    "LOGIN_LOCKOUT_MAX": 1,
    "LOGIN_ADDRESS_FAILURE_LIMIT": 1,
    "LOGIN_ADDRESS_FAILURE_WINDOW": 1,
    "LOGIN_FAMILIAR_DAYS": 0,
    "PASSWORD_RESET_EMAIL_LIMIT": 1,
    "PASSWORD_RESET_ADDRESS_LIMIT": 1,
    "PASSWORD_RESET_WINDOW": 1,
    "PASSWORD_RESET_TIMEOUT": 1,
    "EMAIL_CHANGE_TIMEOUT": 1,
    "EMAIL_CHANGE_LIMIT": 1,
    "REQUEST_BODY_LIMIT": 1,
    "LONG_FORM_BODY_LIMIT": 1,
    "CART_MAX_QUANTITY_PER_LINE": 1,
    "CART_WRITE_RETRIES": 0,
    "CART_SUMMARY_CACHE_TTL": 0,
    "CART_GUEST_CART_RETENTION_DAYS": 1,
    "CART_IDEMPOTENCY_KEYS_KEPT": 1,
    "CART_IDEMPOTENCY_KEY_TTL": 1,
    "CART_OUTCOME_READ_ATTEMPTS": 1,
    "CART_VERSION_CACHE_TTL": 1,
}
# Durations in seconds that must be above zero, and ones that may be zero.
POSITIVE_SECONDS = (
    "ELASTICSEARCH_TIMEOUT",
    "NATS_TIMEOUT",
    "CART_COUNT_TIMEOUT",
    "CART_RELAY_INTERVAL",
    "CART_RELAY_LEASE_SECONDS",
)
NON_NEGATIVE_SECONDS = (
    "CART_RETRY_BACKOFF_BASE",
    "CART_RETRY_BACKOFF_CAP",
    "CART_RELAY_GRACE_SECONDS",
    "CART_RELAY_IDLE_SECONDS",
)
# The values each test-only fault hook takes (empty: off).
FAULT_HOOKS = {"CART_FAULT_AFTER_WRITE": ("", "kill"), "CART_FAULT_RELAY": ("", "pause")}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    for name, minimum in MIN_INT.items():
        value = getattr(settings, name)
        if not _is_int(value) or value < minimum:
            problems.append(
                Error(f"{name} must be a whole number of at least {minimum}, not {value!r}.", id="shopcart.E001")
            )
    for name in POSITIVE_SECONDS:
        value = getattr(settings, name)
        if not _is_number(value) or value <= 0:
            problems.append(Error(f"{name} must be a number of seconds above 0, not {value!r}.", id="shopcart.E002"))
    for name in NON_NEGATIVE_SECONDS:
        value = getattr(settings, name)
        if not _is_number(value) or value < 0:
            problems.append(
                Error(f"{name} must be a number of seconds of at least 0, not {value!r}.", id="shopcart.E002")
            )
    if problems:
        return problems  # the relations below assume well-typed values
    if settings.CART_DEFAULT_CURRENCY not in CURRENCIES:
        problems.append(
            Error(
                f"CART_DEFAULT_CURRENCY must be one of {', '.join(CURRENCIES)}, "
                f"not {settings.CART_DEFAULT_CURRENCY!r}.",
                id="shopcart.E003",
            )
        )
    if settings.CART_RETRY_BACKOFF_CAP < settings.CART_RETRY_BACKOFF_BASE:
        problems.append(Error("CART_RETRY_BACKOFF_CAP must not be below CART_RETRY_BACKOFF_BASE.", id="shopcart.E004"))
    if settings.LOGIN_LOCKOUT_MAX < settings.LOGIN_FAILURE_WINDOW:
        problems.append(Error("LOGIN_LOCKOUT_MAX must not be below LOGIN_FAILURE_WINDOW.", id="shopcart.E004"))
    for name, values in FAULT_HOOKS.items():
        value = getattr(settings, name)
        if value not in values:
            allowed = " or ".join(repr(v) for v in values if v)
            problems.append(Error(f"{name} is a test hook: empty or {allowed}, not {value!r}.", id="shopcart.E005"))
    if settings.CART_RELAY_IDLE_SECONDS < settings.CART_RELAY_GRACE_SECONDS:
        problems.append(
            Error("CART_RELAY_IDLE_SECONDS must not be below CART_RELAY_GRACE_SECONDS.", id="shopcart.E004")
        )
    if settings.CART_RELAY_IDLE_SECONDS > settings.CART_EVENTS_DUPLICATE_WINDOW / 2:
        problems.append(
            Warning(
                "CART_RELAY_IDLE_SECONDS is over half of JetStream's 10-minute duplicate window: an event whose "
                "'published' mark was lost could be sent again after the stream forgot its id.",
                id="shopcart.W003",
            )
        )
    if settings.CART_RELAY_LEASE_SECONDS <= settings.CART_RELAY_INTERVAL:
        problems.append(
            Error(
                "CART_RELAY_LEASE_SECONDS must be longer than CART_RELAY_INTERVAL: the relay leader extends its "
                "lease once per interval.",
                id="shopcart.E004",
            )
        )
    if settings.LOGIN_ADDRESS_FAILURE_LIMIT < settings.LOGIN_FAILURE_LIMIT:
        problems.append(
            Warning(
                "LOGIN_ADDRESS_FAILURE_LIMIT is below LOGIN_FAILURE_LIMIT: shoppers behind one address would "
                "lock each other out.",
                id="shopcart.W001",
            )
        )
    if settings.CART_GUEST_CART_RETENTION_DAYS * 86400 < settings.SESSION_COOKIE_AGE:
        problems.append(
            Warning(
                "CART_GUEST_CART_RETENTION_DAYS is shorter than the session lifetime (SESSION_COOKIE_AGE): "
                "cart_cleanup would delete guest carts their sessions still name.",
                id="shopcart.W002",
            )
        )
    return problems


def register_settings_check() -> None:
    register(check_settings, "shopcart")
