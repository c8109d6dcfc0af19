"""Throttling shared by every replica, in Redis (the default cache).

The generic part, for any flow that must limit attempts (log-in, the password-change form, password
reset): `hit()` counts one attempt of a `key` (an account, an address; hashed, so any text will do)
in a `scope`; at `limit` attempts the key is blocked for `window` seconds, and with `max_block` every
further attempt doubles the block (backoff) up to `max_block`, until `reset()` or until `max_block`
passes without an attempt. `blocked()` says for how many seconds a key is blocked (0: it is not).

Log-in (docs/accounts.md) uses it the way the trusted systems do:

* per account, tight with backoff: LOGIN_FAILURE_LIMIT failures lock the account for LOGIN_FAILURE_WINDOW
  seconds, doubling with each further failure up to LOGIN_LOCKOUT_MAX; the right password resets it;
* per client address, far higher: LOGIN_ADDRESS_FAILURE_LIMIT failures per LOGIN_ADDRESS_FAILURE_WINDOW,
  so a guesser behind a shared address (an office NAT, a mobile carrier) cannot lock out the others;
* an account's *familiar* addresses (where it logged in successfully in the last LOGIN_FAMILIAR_DAYS)
  skip both: there the account has a counter of its own, with the same tight limit. So a stranger
  guessing at the staff account, or guessing from the office's address, does not lock out the staff
  member at their desk. (A shopper logging in for the first time from an address that is over its
  limit does wait: the one case where letting them in would let the guesser in too.)

Every check happens *before* the password is looked at, so a blocked guesser learns nothing.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from accounts.errors import LoginThrottled
from accounts.models import normalize_email

KEY_PREFIX = "throttle:"  # every throttling key in the cache starts with it
LOGIN_ACCOUNT = "login:account"
LOGIN_ADDRESS = "login:address"
LOGIN_ACCOUNT_AT_FAMILIAR_ADDRESS = "login:familiar-account"
PASSWORD_CHANGE = "password-change:account"  # noqa: S105 (a scope name, not a password)
EMAIL_CHANGE = "email-change:account"  # mails sent to confirm a new address


def _key(scope: str, key: str, kind: str) -> str:
    # Hashed: keys stay short and ASCII whatever the input, and hold no address in clear.
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{KEY_PREFIX}{scope}:{kind}:{digest}"


def blocked(*, scope: str, key: str) -> int:
    """Seconds until `key` may try again in `scope`; 0 if it may now."""
    block = _key(scope, key, "block")
    if not cache.get(block):
        return 0
    ttl = cache.ttl(block) if hasattr(cache, "ttl") else None  # django-redis; other backends: 1 s
    return max(1, int(ttl or 1))


def block_seconds(*, count: int, limit: int, window: int, max_block: int | None = None) -> int:
    """How long the `count`-th attempt blocks: 0 under `limit`; at it, `window`; with `max_block`, each
    further attempt doubles the block up to `max_block` (the exponent is bounded: no huge integers)."""
    if count < limit:
        return 0
    return window if not max_block else min(max_block, window * 2 ** min(count - limit, 30))


def hit(*, scope: str, key: str, limit: int, window: int, max_block: int | None = None) -> int:
    """Counts one attempt; returns the seconds `key` is now blocked for (0 while under `limit`)."""
    count_key = _key(scope, key, "count")
    memory = max(window, max_block or 0)
    cache.add(count_key, 0, timeout=memory)  # starts the count; a no-op if it is already running
    try:
        count = cache.incr(count_key)  # atomic INCR in Redis
    except ValueError:  # it expired between add() and incr(): this attempt starts the next count
        cache.add(count_key, 1, timeout=memory)
        count = 1
    if max_block:
        cache.touch(count_key, memory)  # with backoff, failures are forgotten only after a quiet spell
    seconds = block_seconds(count=count, limit=limit, window=window, max_block=max_block)
    if seconds:
        cache.set(_key(scope, key, "block"), 1, timeout=seconds)
    return seconds


def reset(*, scope: str, key: str) -> None:
    cache.delete_many([_key(scope, key, "count"), _key(scope, key, "block")])


def _throttled(seconds: int, what: str = "failed log-in attempts") -> LoginThrottled:
    return LoginThrottled(
        f"Too many {what}. Please wait {seconds} second{'s' if seconds != 1 else ''} and try again.",
        retry_after=seconds,
    )


# --- log-in --------------------------------------------------------------------------------------


def _familiar_key(email: str, client_address: str) -> str:
    return _key("login", f"{normalize_email(email)}\n{client_address}", "familiar")


def _is_familiar(email: str, client_address: str) -> bool:
    return bool(cache.get(_familiar_key(email, client_address)))


def _pair(email: str, client_address: str) -> str:
    return f"{normalize_email(email)}\n{client_address}"


def check(*, email: str, client_address: str) -> None:
    """Raises LoginThrottled if this account may not try again from this address yet."""
    if _is_familiar(email, client_address):
        seconds = blocked(scope=LOGIN_ACCOUNT_AT_FAMILIAR_ADDRESS, key=_pair(email, client_address))
    else:
        seconds = max(
            blocked(scope=LOGIN_ACCOUNT, key=normalize_email(email)),
            blocked(scope=LOGIN_ADDRESS, key=client_address),
        )
    if seconds:
        raise _throttled(seconds)


def record_failure(*, email: str, client_address: str) -> None:
    account_limit = {
        "limit": settings.LOGIN_FAILURE_LIMIT,
        "window": settings.LOGIN_FAILURE_WINDOW,
        "max_block": settings.LOGIN_LOCKOUT_MAX,
    }
    if _is_familiar(email, client_address):
        hit(scope=LOGIN_ACCOUNT_AT_FAMILIAR_ADDRESS, key=_pair(email, client_address), **account_limit)
    else:
        hit(scope=LOGIN_ACCOUNT, key=normalize_email(email), **account_limit)
    hit(
        scope=LOGIN_ADDRESS,
        key=client_address,
        limit=settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        window=settings.LOGIN_ADDRESS_FAILURE_WINDOW,
    )


def record_success(*, email: str, client_address: str) -> None:
    """The account's counters start again and this address becomes familiar to it. The address counter
    stays: one good password must not reset an address that is guessing at other accounts."""
    reset(scope=LOGIN_ACCOUNT, key=normalize_email(email))
    reset(scope=LOGIN_ACCOUNT_AT_FAMILIAR_ADDRESS, key=_pair(email, client_address))
    cache.set(_familiar_key(email, client_address), 1, timeout=settings.LOGIN_FAMILIAR_DAYS * 24 * 3600)


# --- the password-change form's current password ----------------------------------------------------


def check_password_change(*, user_id: int) -> None:
    """Raises LoginThrottled while the user's wrong current passwords have blocked the form."""
    if seconds := blocked(scope=PASSWORD_CHANGE, key=str(user_id)):
        raise _throttled(seconds, "wrong current passwords")


def record_wrong_current_password(*, user_id: int) -> None:
    hit(
        scope=PASSWORD_CHANGE,
        key=str(user_id),
        limit=settings.LOGIN_FAILURE_LIMIT,
        window=settings.LOGIN_FAILURE_WINDOW,
        max_block=settings.LOGIN_LOCKOUT_MAX,
    )


def record_password_changed(*, user_id: int) -> None:
    reset(scope=PASSWORD_CHANGE, key=str(user_id))
