"""The links that confirm a change of email address. A link carries the account id, the nonce of the
change waiting for it (kept in Redis by accounts.services.request_email_change, so a newer request or a
cancel retires an older link) and a fingerprint of the password hash (so a password change retires it
too), signed with a key derived from SECRET_KEY and timestamped (valid EMAIL_CHANGE_TIMEOUT seconds)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing

from accounts import tokens

_SALT = "shopcart.accounts.email-change"


def pending_key(user_id: int) -> str:
    """Where the change waiting for its link lives: {"email", "nonce"}, for EMAIL_CHANGE_TIMEOUT seconds."""
    return f"accounts:email-change:{user_id}"


def make_token(*, user_id: int, nonce: str, password_hash: str) -> str:
    claims = {"u": user_id, "n": nonce, "p": tokens.password_fingerprint(password_hash)}
    return signing.TimestampSigner(salt=_SALT).sign_object(claims)


def read_token(token: str) -> dict[str, Any] | None:
    """The claims of a well-signed link younger than EMAIL_CHANGE_TIMEOUT, else None."""
    try:
        claims = signing.TimestampSigner(salt=_SALT).unsign_object(token, max_age=settings.EMAIL_CHANGE_TIMEOUT)
    except signing.BadSignature:  # SignatureExpired too
        return None
    return claims if isinstance(claims, dict) and isinstance(claims.get("u"), int) else None


def matches(claims: dict[str, Any], *, pending: Any, password_hash: str) -> bool:
    """Whether a link's claims are those of the change now waiting (`pending`), under this password."""
    return (
        isinstance(pending, dict)
        and pending.get("nonce") == claims.get("n")
        and claims.get("p") == tokens.password_fingerprint(password_hash)
    )
