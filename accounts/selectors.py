"""Reads of the accounts app. Keyword-only arguments."""

from __future__ import annotations

from django.core.cache import cache

from accounts import auth_cache, email_change, tokens
from accounts.errors import InvalidToken
from accounts.models import User, normalize_email


def email_taken(*, email: str, except_user_id: int | None = None) -> bool:
    """Whether an account (other than `except_user_id`) has this address, in any letter case."""
    return User.objects.filter(email__iexact=normalize_email(email)).exclude(pk=except_user_id).exists()


def pending_email_change(*, user: User) -> str | None:
    """The address a change is waiting to be confirmed for (its link mailed there), or None."""
    pending = cache.get(email_change.pending_key(user.pk))
    return pending.get("email") if isinstance(pending, dict) else None


def email_change_for_link(*, token: str) -> tuple[User, str] | None:
    """The active account and the new address an email-change link is for, if the link still works: well
    signed, within EMAIL_CHANGE_TIMEOUT, the account's latest change, and no password change since."""
    claims = email_change.read_token(token)
    user = User.objects.filter(pk=claims["u"], is_active=True).first() if claims else None
    if claims is None or user is None:
        return None
    pending = cache.get(email_change.pending_key(user.pk))
    if not email_change.matches(claims, pending=pending, password_hash=user.password):
        return None
    return user, str(pending["email"])


def user_for_token(*, token: str) -> tuple[User, tokens.TokenClaims] | None:
    """The active user an API token stands for, with the token's claims; None when the token is malformed,
    forged, expired or revoked, its user is gone or deactivated, or the password changed since it was
    issued. Used by the one Bearer auth (accounts/auth.py).
    Redis being down raises (fail closed: the API answers 503, never "let it through")."""
    try:
        claims = tokens.decode(token)
    except InvalidToken:
        return None
    # One round trip for the revocation, the user's cache version and their cached row (auth_cache).
    revoked_key = tokens.revocation_key(claims.jti)
    found = cache.get_many([revoked_key, *auth_cache.keys(claims.user_id)])
    if revoked_key in found:
        return None
    user = auth_cache.cached_user(claims.user_id, found)
    if user is None or not tokens.matches_password(claims, user.password):
        return None
    return user, claims


def active_user(*, user_id: int) -> User | None:
    """The active user with this id, read through the auth cache like a token's user (so a signed-in page
    needs no database query either); None when it is gone or deactivated. Redis being down raises."""
    return auth_cache.cached_user(user_id, cache.get_many(auth_cache.keys(user_id)))
