"""Accounts JSON API against the real Redis: register, login, logout, tokens across processes,
expiry, revocation and login throttling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
import redis.exceptions
from django.conf import settings as django_settings
from django.core.cache import cache

from accounts import auth_cache, tokens
from accounts.models import User
from tests.support import ROOT
from tests.support.api import ApiClient, bearer

PASSWORD = "plum-orchard-91"


pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def ann(db: None) -> User:
    return User.objects.create_user(email="ann@example.com", password=PASSWORD, name="Ann")


def run_django(code: str, **env: str) -> str:
    """Runs `code` in a fresh Python process with the test settings (and, through the environment,
    this run's SHOPCART_TEST_RUN_ID, so the same Redis prefix); returns its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", "import django\ndjango.setup()\n" + code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "shopcart.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- register ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_creates_the_user() -> None:
    response = ApiClient().post_json("/api/register", {"name": "Bea", "email": "Bea@Example.com", "password": PASSWORD})

    assert response.status_code == 201
    user = User.objects.get()
    assert response.json() == {"id": user.pk, "name": "Bea", "email": "bea@example.com"}
    assert user.check_password(PASSWORD)
    assert user.is_active


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@Example.Com", " ann@example.com "])
def test_register_refuses_a_taken_email_in_any_case(ann: User, email: str) -> None:
    response = ApiClient().post_json("/api/register", {"name": "Other Ann", "email": email, "password": PASSWORD})

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "email_taken"
    assert "already exists" in error["message"]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_register_invalid_fields_are_400_with_field_errors() -> None:
    response = ApiClient().post_json("/api/register", {"name": "  ", "email": "not-an-address", "password": "1234"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"]
    assert set(error["fields"]) == {"name", "email", "password"}
    # Django's password validators speak through the API.
    assert any("too short" in message for message in error["fields"]["password"])
    assert any("entirely numeric" in message for message in error["fields"]["password"])
    assert not User.objects.exists()


@pytest.mark.django_db
def test_register_password_similar_to_the_email_is_refused() -> None:
    response = ApiClient().post_json(
        "/api/register",
        {"name": "Zed", "email": "marmalade.sunrise@example.com", "password": "marmalade.sunrise"},
    )

    assert response.status_code == 400
    assert any("too similar" in message for message in response.json()["error"]["fields"]["password"])


@pytest.mark.django_db
def test_register_missing_fields_use_the_same_error_shape() -> None:
    response = ApiClient().post_json("/api/register", {"email": "x@example.com"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"name", "password"}


# --- login and tokens -------------------------------------------------------------------------


def test_login_returns_a_bearer_token(ann: User) -> None:
    client = ApiClient()
    response = client.log_in("ANN@example.com", PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    claims = jwt.decode(body["auth_token"], options={"verify_signature": False})
    assert claims["sub"] == str(ann.pk)
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["jti"]
    assert jwt.get_unverified_header(body["auth_token"])["alg"] == "HS256"

    me = client.get("/api/me", **bearer(body["auth_token"]))
    assert me.status_code == 200
    assert me.json() == {"id": ann.pk, "name": "Ann", "email": "ann@example.com", "pending_email": None}


def test_token_lifetime_follows_the_setting(ann: User, settings: Any) -> None:
    settings.API_TOKEN_TTL = 120
    body = ApiClient().log_in("ann@example.com", PASSWORD).json()

    assert body["expires_in"] == 120
    claims = jwt.decode(body["auth_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    ("email", "password"), [("ann@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)]
)
def test_wrong_credentials_are_401(ann: User, email: str, password: str) -> None:
    response = ApiClient().log_in(email, password)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_credentials"
    # The same words whether the account exists or not.
    assert error["message"] == "The email address or password is incorrect."
    assert "auth_token" not in response.json()


def test_inactive_user_cannot_log_in_and_their_tokens_stop_working(ann: User) -> None:
    client = ApiClient()
    token = client.login_token("ann@example.com", PASSWORD)
    ann.is_active = False
    ann.save()

    assert client.get("/api/me", **bearer(token)).status_code == 401
    assert client.log_in("ann@example.com", PASSWORD).status_code == 401


def test_changing_the_password_ends_earlier_tokens(ann: User) -> None:
    client = ApiClient()
    earlier = client.login_token("ann@example.com", PASSWORD)
    assert client.get("/api/me", **bearer(earlier)).status_code == 200

    ann.set_password("a-new-plum-orchard-92")
    ann.save()
    response = client.get("/api/me", **bearer(earlier))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"

    fresh = client.log_in("ann@example.com", "a-new-plum-orchard-92").json()["auth_token"]
    assert client.get("/api/me", **bearer(fresh)).status_code == 200


def test_the_token_user_is_cached_until_the_user_changes(ann: User, django_assert_num_queries: Any) -> None:
    """accounts/auth_cache.py: the row the Bearer auth needs is read once, then served from Redis with no
    query, until a save or delete of the user, which every replica sees at once (the version is in Redis)."""
    client = ApiClient()
    token = client.login_token("ann@example.com", PASSWORD)
    assert client.get("/api/me", **bearer(token)).status_code == 200
    with django_assert_num_queries(0):
        me = client.get("/api/me", **bearer(token))
    assert me.json() == {"id": ann.pk, "name": "Ann", "email": "ann@example.com", "pending_email": None}

    ann.name = "Ann B."
    ann.save()
    assert client.get("/api/me", **bearer(token)).json()["name"] == "Ann B."

    ann.delete()
    response = client.get("/api/me", **bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_an_entry_loaded_before_a_change_is_never_served(ann: User) -> None:
    """A reader that loaded the row just before a change stores it under the version it read before the
    load; the change bumped that version, so the old row is stale on arrival."""
    client = ApiClient()
    token = client.login_token("ann@example.com", PASSWORD)
    version = int(cache.get(auth_cache.version_key(ann.pk)) or 0)
    old_row = User.objects.get(pk=ann.pk)
    ann.is_active = False
    ann.save()
    auth_cache.store(old_row, version=version)  # the slow reader finishes after the change

    assert client.get("/api/me", **bearer(token)).status_code == 401


def test_without_redis_an_account_can_be_created_but_not_changed(ann: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a user needs no cache bump (a new id has no entry); changing one does, so a change that
    could leave other replicas serving the old row is refused instead (fail closed)."""

    def redis_down(*args: Any, **kwargs: Any) -> Any:
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis: Connection refused.")

    monkeypatch.setattr(auth_cache, "get_redis_connection", redis_down)
    created = ApiClient().post_json("/api/register", {"name": "Bea", "email": "bea@example.com", "password": PASSWORD})
    assert created.status_code == 201

    ann.is_active = False
    with pytest.raises(redis.exceptions.ConnectionError):
        ann.save()
    assert User.objects.get(pk=ann.pk).is_active


def test_token_issued_by_another_process_is_accepted(ann: User) -> None:
    """A separate interpreter with the same settings (same SECRET_KEY, nothing else shared) issues a
    token through accounts.services; this process accepts it on an authenticated endpoint. It needs
    no database: issuing only reads the user's id and password hash. Then the other way round: a token issued here is
    verified there. A per-process key (the original's defect) fails both halves."""
    client = ApiClient()
    issued_elsewhere = run_django(
        "from accounts import services\n"
        "from accounts.models import User\n"
        f"print(services.issue_token(user=User(pk={ann.pk}, password={ann.password!r})).auth_token)\n"
    )

    me = client.get("/api/me", **bearer(issued_elsewhere))
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"

    issued_here = client.login_token("ann@example.com", PASSWORD)
    verified_elsewhere = run_django(f"from accounts import tokens\nprint(tokens.decode({issued_here!r}).user_id)\n")
    assert verified_elsewhere == str(ann.pk)


def test_token_from_a_process_with_another_secret_is_refused(ann: User) -> None:
    # The control for the test above: it is the shared secret that makes tokens portable.
    forged = run_django(
        "from accounts import services\n"
        "from accounts.models import User\n"
        f"print(services.issue_token(user=User(pk={ann.pk}, password={ann.password!r})).auth_token)\n",
        SECRET_KEY="some-other-deployment-secret-of-decent-length-0123456789",
    )

    response = ApiClient().get("/api/me", **bearer(forged))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_expired_token_is_refused(ann: User) -> None:
    now = int(time.time())
    claims = {"sub": str(ann.pk), "jti": "expired-1", "iat": now - 3600, "exp": now - 60}
    claims["pwd"] = tokens.password_fingerprint(ann.password)
    expired = tokens.encode(claims)
    still_valid = tokens.encode({**claims, "jti": "fresh-1", "exp": now + 60})
    client = ApiClient()

    assert client.get("/api/me", **bearer(still_valid)).status_code == 200
    response = client.get("/api/me", **bearer(expired))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_tampered_and_unsigned_tokens_are_refused(ann: User, db: None) -> None:
    other = User.objects.create_user(email="bob@example.com", password=PASSWORD, name="Bob")
    client = ApiClient()
    token = client.login_token("ann@example.com", PASSWORD)
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    swapped = jwt.api_jws.base64url_encode(jwt.api_jws.json.dumps({**claims, "sub": str(other.pk)}).encode()).decode()
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    signed_with_raw_secret = jwt.encode(claims, key=django_settings.SECRET_KEY, algorithm="HS256")

    for bad in [f"{header}.{swapped}.{signature}", unsigned, signed_with_raw_secret, "not-a-token"]:
        assert client.get("/api/me", **bearer(bad)).status_code == 401, bad
    assert client.get("/api/me", **bearer(token)).status_code == 200


def test_logout_revokes_only_the_presented_token_on_every_process(ann: User) -> None:
    client = ApiClient()
    token, other_token = (
        client.login_token("ann@example.com", PASSWORD),
        client.login_token("ann@example.com", PASSWORD),
    )
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]

    assert client.post("/api/logout", **bearer(token)).status_code == 204
    refused = client.get("/api/me", **bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"
    assert client.post("/api/logout", **bearer(token)).status_code == 401
    assert client.get("/api/me", **bearer(other_token)).status_code == 200

    # The revocation lives in Redis until the token would have expired anyway...
    ttl = cache.ttl(tokens.revocation_key(jti))
    assert 86400 - 60 < ttl <= 86400 + tokens.LEEWAY_SECONDS
    # ...so another process (replica) sees it too.
    assert run_django(f"from accounts import tokens\nprint(tokens.is_revoked({jti!r}))\n") == "True"


def test_logout_without_a_token_is_401(db: None) -> None:
    response = ApiClient().post("/api/logout")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- throttling -------------------------------------------------------------------------------


def test_throttling_engages_and_expires(ann: User, settings: Any) -> None:
    settings.LOGIN_FAILURE_WINDOW = 2  # the limit stays at its default, 5
    client = ApiClient()
    for _ in range(5):
        assert client.log_in("ann@example.com", "wrong-password").status_code == 401

    # Blocked, even with the right password: a blocked guesser must learn nothing.
    blocked = client.log_in("ann@example.com", PASSWORD)
    assert blocked.status_code == 429
    error = blocked.json()["error"]
    assert error["code"] == "throttled"
    assert "Too many failed log-in attempts" in error["message"]
    retry_after = int(blocked["Retry-After"])
    assert 1 <= retry_after <= 2

    time.sleep(retry_after + 0.5)
    assert client.log_in("ann@example.com", PASSWORD).status_code == 200


def test_throttling_counts_per_account_across_addresses(ann: User, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    client = ApiClient()
    for number in range(3):
        client.log_in("ANN@example.com", "wrong-password", REMOTE_ADDR=f"198.51.100.{number}")

    response = client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR="198.51.100.200")
    assert response.status_code == 429


def test_throttling_counts_per_address_across_accounts(ann: User, settings: Any) -> None:
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    client = ApiClient()
    for number in range(3):
        client.log_in(f"someone{number}@example.com", "guess", REMOTE_ADDR="198.51.100.7")

    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 429
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR="198.51.100.8").status_code == 200


def test_a_neighbours_wrong_passwords_never_refuse_a_correct_one(ann: User) -> None:
    """Behind one address (an office NAT): someone locks their own account, and guesses at others,
    far past the per-account limit; every other shopper there still logs in. Default settings."""
    client = ApiClient()
    office = {"REMOTE_ADDR": "198.51.100.30"}
    for _ in range(settings_limit() + 1):
        client.log_in("bob@example.com", "wrong", **office)
    assert client.log_in("bob@example.com", "wrong", **office).status_code == 429  # bob's account is locked
    for number in range(6 * settings_limit()):
        client.log_in(f"colleague{number % 10}@example.com", "typo", **office)

    assert client.log_in("ann@example.com", PASSWORD, **office).status_code == 200


def settings_limit() -> int:
    return django_settings.LOGIN_FAILURE_LIMIT


def test_the_address_limit_is_far_above_the_account_limit() -> None:
    # "Tens to hundreds per hour" for an address; a handful per account.
    assert django_settings.LOGIN_ADDRESS_FAILURE_LIMIT >= 10 * django_settings.LOGIN_FAILURE_LIMIT
    assert django_settings.LOGIN_ADDRESS_FAILURE_WINDOW >= 3600


def test_an_account_lockout_doubles_with_each_further_failure(ann: User, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2
    settings.LOGIN_FAILURE_WINDOW = 1
    client = ApiClient()
    waits = []
    for attempt in range(3):
        for _ in range(2 if attempt == 0 else 1):  # after the first lock, one failure locks again
            assert client.log_in("ann@example.com", "wrong").status_code == 401
        blocked = client.log_in("ann@example.com", PASSWORD)
        assert blocked.status_code == 429
        waits.append(int(blocked["Retry-After"]))
        time.sleep(waits[-1] + 0.2)
    assert waits == [1, 2, 4]
    # The right password ends it: the next failure does not lock the account again.
    assert client.log_in("ann@example.com", PASSWORD).status_code == 200
    assert client.log_in("ann@example.com", "wrong").status_code == 401
    assert client.log_in("ann@example.com", PASSWORD).status_code == 200


def test_a_stranger_guessing_cannot_lock_an_account_out_of_its_familiar_address(ann: User) -> None:
    client = ApiClient()
    desk, stranger, elsewhere = "192.0.2.50", "203.0.113.66", "198.51.100.99"
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR=desk).status_code == 200
    for _ in range(settings_limit()):
        assert client.log_in("ann@example.com", "guess", REMOTE_ADDR=stranger).status_code == 401

    # Locked for every unfamiliar address, the guesser's included ...
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR=stranger).status_code == 429
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR=elsewhere).status_code == 429
    # ... but not at the desk she logs in from.
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR=desk).status_code == 200
    # Guessing from the familiar address has its own tight limit.
    for _ in range(settings_limit()):
        assert client.log_in("ann@example.com", "guess", REMOTE_ADDR=desk).status_code == 401
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR=desk).status_code == 429


def test_successful_login_clears_the_account_counter(ann: User, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    client = ApiClient()
    # Different addresses, so only the account counter could add up to the limit.
    for address in ["192.0.2.1", "192.0.2.2"]:
        assert client.log_in("ann@example.com", "typo", REMOTE_ADDR=address).status_code == 401
    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR="192.0.2.3").status_code == 200
    for address in ["192.0.2.4", "192.0.2.5"]:
        assert client.log_in("ann@example.com", "typo", REMOTE_ADDR=address).status_code == 401

    assert client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR="192.0.2.6").status_code == 200


def test_forwarded_for_is_ignored_unless_trusted(ann: User, settings: Any) -> None:
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    client = ApiClient()
    for number in range(3):
        client.log_in(
            f"x{number}@example.com",
            "guess",
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"10.9.9.{number}",
        )

    response = client.log_in("ann@example.com", PASSWORD, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.99")
    assert response.status_code == 429


def test_trusted_forwarded_for_uses_the_hop_our_proxy_added(ann: User, settings: Any) -> None:
    settings.TRUST_X_FORWARDED_FOR = True
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    client = ApiClient()
    proxy = {"REMOTE_ADDR": "172.18.0.5"}
    # The client makes up a new first hop each time; nginx appends the address it really saw.
    for number in range(3):
        forwarded = f"10.0.0.{number}, 203.0.113.7"
        client.log_in(f"x{number}@example.com", "guess", HTTP_X_FORWARDED_FOR=forwarded, **proxy)

    blocked = client.log_in("ann@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="10.0.0.99, 203.0.113.7", **proxy)
    assert blocked.status_code == 429
    # Another client behind the same proxy is not punished for it.
    assert client.log_in("ann@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8", **proxy).status_code == 200


def test_accounts_api_imports_in_either_order() -> None:
    # accounts.api must not need shopcart.api loaded first (no import cycle between them).
    output = run_django(
        "import accounts.api\nfrom django.urls import reverse\nprint(reverse('api:logout'), reverse('api:register'))\n"
    )
    assert output == "/api/logout /api/register"
