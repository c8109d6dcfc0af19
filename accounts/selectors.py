"""Reads of the accounts app. Keyword-only arguments."""

from __future__ import annotations

from accounts import tokens
from accounts.errors import InvalidToken
from accounts.models import User, normalize_email


def email_taken(*, email: str) -> bool:
    return User.objects.filter(email__iexact=normalize_email(email)).exists()


def user_for_token(*, token: str) -> tuple[User, tokens.TokenClaims] | None:
    """The active user an API token stands for, with the token's claims; None when the token is malformed,
    forged, expired or revoked, its user is gone or deactivated, or the password changed since it was
    issued. Used by the one Bearer auth (accounts/auth.py).
    Redis being down raises (fail closed: the API answers 503, never "let it through")."""
    try:
        claims = tokens.decode(token)
    except InvalidToken:
        return None
    if tokens.is_revoked(claims.jti):
        return None
    user = User.objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None or not tokens.matches_password(claims, user.password):
        return None
    return user, claims
