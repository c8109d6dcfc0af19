"""API tokens: JWTs (HS256) signed with a key derived from SECRET_KEY, so every replica accepts what
another issued, and a restart invalidates nothing (the original's defect 1 was a per-process key).
A revocation is a Redis key per token id (`jti`) that lives until the token would have expired.
A token also carries a fingerprint of its user's password hash (`pwd`), so changing the password ends
every token issued before, as Django's session auth hash ends the other sessions."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.errors import InvalidToken

ALGORITHM = "HS256"
# Clock skew tolerated between the replica that issued a token and the one that checks it.
LEEWAY_SECONDS = 5
_KEY_SALT = "shopcart.accounts.tokens"
_PASSWORD_SALT = "shopcart.accounts.tokens.password"  # noqa: S105 (a salt name, not a password)
_REVOKED_PREFIX = "accounts:revoked-token:"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    issued_at: int
    expires_at: int
    password_fingerprint: str


def token_ttl() -> int:
    return settings.API_TOKEN_TTL


@functools.lru_cache(maxsize=8)
def signing_key(secret: str | bytes) -> bytes:
    """A key for API tokens only, derived from the shared secret: deterministic on every replica, and
    a token signature can never be replayed as a session or CSRF signature (or the other way round)."""
    return salted_hmac(_KEY_SALT, "api-token-signing-key", secret=secret, algorithm="sha256").digest()


def _secrets() -> list[str | bytes]:
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def password_fingerprint(password_hash: str, *, secret: str | bytes | None = None) -> str:
    """A keyed digest of the user's password hash (never the hash itself: tokens are readable)."""
    digest = salted_hmac(_PASSWORD_SALT, password_hash, secret=secret or settings.SECRET_KEY, algorithm="sha256")
    return digest.hexdigest()[:32]


def matches_password(claims: TokenClaims, password_hash: str) -> bool:
    """Whether the token was issued under this password (with the secret or one of its fallbacks)."""
    return any(
        constant_time_compare(claims.password_fingerprint, password_fingerprint(password_hash, secret=secret))
        for secret in _secrets()
    )


def encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, signing_key(settings.SECRET_KEY), algorithm=ALGORITHM)


def new_claims(*, user_id: int, password_hash: str, ttl: int | None = None) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(user_id),  # RFC 7519 (and PyJWT) want a string subject
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + (token_ttl() if ttl is None else ttl),
        "pwd": password_fingerprint(password_hash),
    }


# Tokens this process verified (signature and shape), newest last: a client sends the same token on every
# request, and its signature cannot become valid or invalid without a change of the secrets (which clears
# this). Expiry is checked on every use. Bounded; the oldest are forgotten first.
_VERIFIED_KEPT = 10_000
_verified: OrderedDict[str, TokenClaims] = OrderedDict()
_verified_lock = threading.Lock()


def decode(token: str) -> TokenClaims:
    """Checks signature, expiry and the claims' shape; raises InvalidToken. Accepts tokens signed
    with SECRET_KEY_FALLBACKS too, so rotating the secret does not log every client out at once."""
    claims = _verified.get(token)
    if claims is None:
        claims = _verify(token)
        with _verified_lock:
            _verified[token] = claims
            if len(_verified) > _VERIFIED_KEPT:
                _verified.popitem(last=False)
    # PyJWT's own rule (checked by _verify on first sight too): expired once exp <= now - leeway.
    elif claims.expires_at <= time.time() - LEEWAY_SECONDS:
        raise InvalidToken("The token has expired.")
    return claims


def _verify(token: str) -> TokenClaims:
    for secret in _secrets():
        try:
            payload = jwt.decode(
                token,
                signing_key(secret),
                algorithms=[ALGORITHM],  # never taken from the token's header
                options={"require": ["sub", "jti", "iat", "exp", "pwd"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The token has expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("The token is not valid.") from exc
        try:
            return TokenClaims(
                user_id=int(payload["sub"]),
                jti=str(payload["jti"]),
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
                password_fingerprint=str(payload["pwd"]),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidToken("The token is not valid.") from exc
    raise InvalidToken("The token is not valid.")


def revocation_key(jti: str) -> str:
    return f"{_REVOKED_PREFIX}{jti}"


def revoke(claims: TokenClaims) -> None:
    # Kept a little past expiry (leeway) so no replica can still accept it; then Redis forgets it.
    remaining = claims.expires_at - int(time.time()) + LEEWAY_SECONDS
    if remaining > 0:
        cache.set(revocation_key(claims.jti), 1, timeout=remaining)


def is_revoked(jti: str) -> bool:
    return cache.get(revocation_key(jti)) is not None


def _forget_verified(*, setting: str, **kwargs: Any) -> None:
    # Only tests change the secrets at run time; a deployment restarts with its new settings.
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        with _verified_lock:
            _verified.clear()
        signing_key.cache_clear()


setting_changed.connect(_forget_verified, dispatch_uid="accounts.tokens.forget_verified")
