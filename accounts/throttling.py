"""Login throttling shared by every replica: failure counters live in Redis (the default cache),
one per account (normalised e-mail) and one per client address, each in a fixed window that starts
at its first failure. At LOGIN_FAILURE_LIMIT failures the key blocks until its window ends."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from accounts.errors import LoginThrottled
from accounts.models import normalize_email

DEFAULT_LIMIT = 5
DEFAULT_WINDOW_SECONDS = 60
_PREFIX = "accounts:login-failures:"


def failure_limit() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_LIMIT", DEFAULT_LIMIT))


def failure_window() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_WINDOW", DEFAULT_WINDOW_SECONDS))


def account_key(email: str) -> str:
    # Hashed: keys stay short and ASCII whatever the input, and hold no address in clear.
    digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
    return f"{_PREFIX}account:{digest}"


def address_key(client_address: str) -> str:
    return f"{_PREFIX}address:{client_address}"


def _seconds_left(key: str) -> int:
    ttl = cache.ttl(key) if hasattr(cache, "ttl") else None  # django-redis; other backends: a full window
    return max(1, int(ttl)) if ttl else failure_window()


def check(*, email: str, client_address: str) -> None:
    """Raises LoginThrottled if the account or the address has used up its failures."""
    keys = [account_key(email), address_key(client_address)]
    counts = cache.get_many(keys)
    limit = failure_limit()
    blocked = [key for key in keys if int(counts.get(key) or 0) >= limit]
    if blocked:
        retry_after = max(_seconds_left(key) for key in blocked)
        raise LoginThrottled(
            f"Too many failed log-in attempts. Please wait {retry_after} second{'s' if retry_after != 1 else ''} "
            "and try again.",
            retry_after=retry_after,
        )


def _bump(key: str, window: int) -> int:
    cache.add(key, 0, timeout=window)  # starts the window; a no-op if it is already running
    try:
        return cache.incr(key)  # atomic INCR in Redis; keeps the key's expiry
    except ValueError:
        # The window ended between add() and incr(): this failure opens the next one.
        cache.add(key, 1, timeout=window)
        return 1


def record_failure(*, email: str, client_address: str) -> None:
    window = failure_window()
    _bump(account_key(email), window)
    _bump(address_key(client_address), window)


def clear_account(*, email: str) -> None:
    """After a successful log-in. The address counter stays: one good password must not reset the
    count of an address that is guessing at other accounts."""
    cache.delete(account_key(email))


def hit(*, scope: str, subject: str, limit: int, window: int) -> int:
    """A generic fixed-window rate limit on the same Redis counters, for limits other than log-in
    failures (password-reset mails): counts one use of `subject` in `scope` and returns the seconds
    to wait if that use went over `limit`, else 0. `subject` is hashed, like account keys."""
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    key = f"accounts:{scope}:{digest}"
    if _bump(key, window) <= limit:
        return 0
    ttl = cache.ttl(key) if hasattr(cache, "ttl") else None
    return max(1, int(ttl)) if ttl else window
