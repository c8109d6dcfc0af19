"""API tokens without services (accounts/tokens.py): signing, expiry, shape, secret rotation and the
password fingerprint. Revocation lives in Redis and is tested in tests/accounts/test_accounts_api.py."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from accounts import tokens
from accounts.errors import InvalidToken

HASH = "pbkdf2_sha256$870000$salt$hash"


def _token(**overrides: Any) -> str:
    return tokens.encode({**tokens.new_claims(user_id=7, password_hash=HASH), **overrides})


def test_a_token_decodes_to_its_claims() -> None:
    claims = tokens.decode(_token())
    assert claims.user_id == 7
    assert claims.expires_at - claims.issued_at == tokens.token_ttl()
    assert len(claims.jti) == 32
    assert tokens.matches_password(claims, HASH)
    assert not tokens.matches_password(claims, HASH + "changed")


def test_the_ttl_comes_from_the_setting(settings: Any) -> None:
    settings.API_TOKEN_TTL = 60
    claims = tokens.decode(_token())
    assert claims.expires_at - claims.issued_at == 60


def test_each_token_has_its_own_id() -> None:
    assert tokens.decode(_token()).jti != tokens.decode(_token()).jti


def test_an_expired_token_is_refused_after_the_leeway() -> None:
    past = int(time.time()) - tokens.LEEWAY_SECONDS - 10
    with pytest.raises(InvalidToken, match="expired"):
        tokens.decode(_token(iat=past - 60, exp=past))
    # Within the clock skew tolerated between replicas it still works.
    assert tokens.decode(_token(exp=int(time.time()) - 1)).user_id == 7


def test_a_token_verified_before_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """decode() remembers the tokens it verified; their expiry is still checked on every use."""
    now = time.time()
    token = _token(exp=int(now) + 60)
    assert tokens.decode(token).user_id == 7
    assert tokens.decode(token).user_id == 7  # remembered
    monkeypatch.setattr(tokens.time, "time", lambda: now + 60 + tokens.LEEWAY_SECONDS + 1)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.decode(token)


@pytest.mark.parametrize("missing", ["sub", "jti", "iat", "exp", "pwd"])
def test_a_token_missing_a_claim_is_refused(missing: str) -> None:
    claims = tokens.new_claims(user_id=7, password_hash=HASH)
    del claims[missing]
    with pytest.raises(InvalidToken):
        tokens.decode(tokens.encode(claims))


def test_a_subject_that_is_not_a_user_id_is_refused() -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(_token(sub="admin"))


def test_a_token_signed_with_another_key_is_refused() -> None:
    forged = jwt.encode(
        tokens.new_claims(user_id=7, password_hash=HASH),
        "not the key, but long enough for HS256 anyway",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        tokens.decode(forged)


def test_the_algorithm_is_never_taken_from_the_token() -> None:
    unsigned = jwt.encode(tokens.new_claims(user_id=7, password_hash=HASH), None, algorithm="none")
    with pytest.raises(InvalidToken):
        tokens.decode(unsigned)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "Bearer abc"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(garbage)


def test_rotating_the_secret_keeps_old_tokens_working(settings: Any) -> None:
    old = _token()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a brand new secret key that is long enough to be used here"
    claims = tokens.decode(old)
    assert claims.user_id == 7
    assert tokens.matches_password(claims, HASH)  # the fingerprint was made with the old secret
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(InvalidToken):
        tokens.decode(old)


def test_the_signing_key_is_only_for_tokens() -> None:
    """Derived from the secret, never the secret itself: a token signature is no session signature."""
    assert tokens.signing_key("secret") == tokens.signing_key("secret")
    assert tokens.signing_key("secret") != tokens.signing_key("other")
    assert tokens.signing_key("secret") != b"secret"


def test_the_fingerprint_does_not_reveal_the_hash() -> None:
    fingerprint = tokens.password_fingerprint(HASH)
    assert len(fingerprint) == 32
    assert "pbkdf2" not in fingerprint
    assert fingerprint != tokens.password_fingerprint(HASH, secret="another secret")
