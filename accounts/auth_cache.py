"""What the Bearer auth and the page sessions need of a user row, cached in Redis so a request costs no
database query (the ORM load was ~0.3 ms of CPU per request, more than the rest of the auth together),
and keeps working while the database fails over.

Every replica must see a password change, a deactivation or a deletion at once, so an entry is only
used while it carries the user's current *version*: a counter in Redis, bumped by every save and
delete of a user (the receivers below, connected by AccountsConfig.ready) before the write (so a
write that cannot invalidate does not happen: fail closed), right after it, and again after its
transaction commits, when the entry is also filled again as a reader would (so the first request
after a log-in needs no database query either). A reader takes the version in the same round trip as
the token's revocation and the entry, and stores what it loaded from the database under the version it
read *before* the load, so an entry loaded from a row that was about to change is stale on arrival and
never served.

A change that bypasses `Model.save`/`delete` (`QuerySet.update`, raw SQL) must call `bump` itself.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis.exceptions
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django_redis import get_redis_connection

from accounts.models import User

logger = logging.getLogger(__name__)

FIELDS = tuple(field.attname for field in User._meta.concrete_fields)
# Part of the entry's key: code with another user table (a rolling deploy) reads other entries.
_SHAPE = hashlib.sha256(",".join(FIELDS).encode()).hexdigest()[:8]
ENTRY_TTL = 600
# Longer than any entry lives: once a version key expires (reads as 0), every entry stored under an
# earlier 0 has expired too.
VERSION_TTL = 24 * 60 * 60


def entry_key(user_id: int) -> str:
    return f"accounts:auth-user:{_SHAPE}:{user_id}"


def version_key(user_id: int) -> str:
    return f"accounts:auth-user-version:{user_id}"


def keys(user_id: int) -> list[str]:
    """The keys a reader gets in one round trip: the user's version, then their entry."""
    return [version_key(user_id), entry_key(user_id)]


def from_entry(entry: Any, *, version: int) -> User | None:
    """The user an entry holds if it was stored under `version`, else None."""
    if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] != version:
        return None
    return User.from_db(User.objects.db, FIELDS, entry[1])


def store(user: User, *, version: int) -> None:
    cache.set(entry_key(user.pk), (version, tuple(getattr(user, name) for name in FIELDS)), timeout=ENTRY_TTL)


def bump(user_id: int) -> None:
    """Makes every cached entry of this user stale, on every replica."""
    key = cache.make_key(version_key(user_id))
    pipeline = get_redis_connection("default").pipeline(transaction=True)
    pipeline.incr(key)
    pipeline.expire(key, VERSION_TTL)
    pipeline.execute()


def cached_user(user_id: int, found: dict[str, Any]) -> User | None:
    """The active user from the entry in `found` (the values of `keys(user_id)`, fetched by the caller in
    one round trip) if it is current; else from the database, then stored for the next reader under the
    version read *before* the load. None if the user is gone or deactivated."""
    version = int(found.get(version_key(user_id)) or 0)
    user = from_entry(found.get(entry_key(user_id)), version=version)
    if user is None:
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is not None:
            store(user, version=version)
    return user if user is not None and user.is_active else None


def _bump_and_refill(user_id: int) -> None:
    """After a change is committed: a new version, and the entry stored again as a reader would, so the
    next request (the first after a log-in, say) needs no database query, even if the database went away
    in between."""
    bump(user_id)
    try:
        cached_user(user_id, cache.get_many(keys(user_id)))
    except Exception as exc:  # noqa: BLE001 - a later reader loads it instead; the change itself stands
        logger.warning("could not refill the auth cache entry of user %s: %r", user_id, exc)


def _bump_now_and_after_commit(user_id: int) -> None:
    bump(user_id)
    # Inside a transaction the row changes for others only at its commit: a reader in between could
    # store the old row under the version just bumped. (Robust: the row is committed by then, and a
    # failure here only leaves that narrow race open until the entry expires.)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _bump_and_refill(user_id), robust=True)
    else:
        _bump_and_refill(user_id)


def _before_save(sender: type[User], instance: User, **kwargs: Any) -> None:
    if instance.pk is not None:
        bump(instance.pk)


def _after_save(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if not created:
        _bump_now_and_after_commit(instance.pk)
        return
    # A new id has no entry (a deleted user's was made stale by the deletion), unless a rolled-back
    # creation left one (tests): bump, but an account can be created while Redis is down.
    try:
        _bump_now_and_after_commit(instance.pk)
    except redis.exceptions.RedisError as exc:
        logger.warning("could not bump the auth cache version of new user %s: %r", instance.pk, exc)


def _before_delete(sender: type[User], instance: User, **kwargs: Any) -> None:
    bump(instance.pk)


def _after_delete(sender: type[User], instance: User, **kwargs: Any) -> None:
    _bump_now_and_after_commit(instance.pk)


def connect_signals() -> None:
    uid = "accounts.auth_cache"
    pre_save.connect(_before_save, sender=User, dispatch_uid=f"{uid}.pre_save")
    post_save.connect(_after_save, sender=User, dispatch_uid=f"{uid}.post_save")
    pre_delete.connect(_before_delete, sender=User, dispatch_uid=f"{uid}.pre_delete")
    post_delete.connect(_after_delete, sender=User, dispatch_uid=f"{uid}.post_delete")
