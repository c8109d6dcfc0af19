"""What only a real PostgreSQL server shows about the accounts: sign-ups racing for one address against the
case-insensitive unique constraint, through a real gunicorn (several processes and threads, pooled
connections); and the migrations applied to a database that already holds users. (A restart of the
server under load is in the fault suite, tests/shopcart/test_faults.py; a failover in the cluster suite.)"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection

from tests.support import unique
from tests.support.database import create_database, drop_database, own_database, run_prefix
from tests.support.gunicorn import gunicorn, manage

pytestmark = pytest.mark.slow

PASSWORD = "a-Long-password-1"
RACES = 12  # addresses, each signed up for twice at the same moment


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("signup-race")
    with own_database("signup_race") as url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
            "DATABASE_URL": url,
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "8",
            "GUNICORN_ACCESSLOG": "/dev/null",
        }
        with gunicorn(env=env, log_path=tmp / "gunicorn.log") as port:
            yield {"port": port, "url": url, "log": tmp / "gunicorn.log"}


def _api_signup(connection: http.client.HTTPConnection, email: str) -> tuple[int, Any]:
    body = json.dumps({"name": "Racer", "email": email, "password": PASSWORD})
    connection.request("POST", "/api/register", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def _page_signup(connection: http.client.HTTPConnection, email: str, csrf: str) -> tuple[int, Any]:
    form = {"csrfmiddlewaretoken": csrf, "name": "Racer", "email": email, "password1": PASSWORD, "password2": PASSWORD}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf}"}
    connection.request("POST", "/accounts/signup/", body=urlencode(form), headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode()


def _race(port: int, emails: tuple[str, str], kind: str) -> list[tuple[int, Any]]:
    """Both sign-ups sent at the same moment, each on a connection opened beforehand."""
    barrier = threading.Barrier(2)
    results: list[tuple[int, Any]] = []
    csrf = "r" * 32  # a CSRF cookie and form token of the client's own making, as a browser would send back

    def sign_up(email: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        barrier.wait()
        try:
            results.append(_api_signup(connection, email) if kind == "api" else _page_signup(connection, email, csrf))
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _accounts_by_email(url: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        return Counter(row[0] for row in conn.execute("SELECT lower(email) FROM accounts_user").fetchall())


@pytest.mark.parametrize("kind", ["api", "page"])
def test_two_sign_ups_for_one_address_in_two_cases_at_once_make_one_account(server: dict[str, Any], kind: str) -> None:
    outcomes: Counter[str] = Counter()
    addresses = []
    for _ in range(RACES):
        local = unique("race")
        addresses.append(f"{local}@example.com")
        for status, body in _race(server["port"], (f"{local}@example.com", f"{local.upper()}@EXAMPLE.com"), kind):
            if kind == "api":
                outcome = "created" if status == 201 else f"{status} {body.get('error', {}).get('code')}"
            else:
                taken = status == 200 and "An account with this email address already exists." in body
                outcome = "created" if status == 302 else "refused: taken" if taken else f"{status}"
            outcomes[outcome] += 1

    refused = "409 email_taken" if kind == "api" else "refused: taken"
    assert outcomes == {"created": RACES, refused: RACES}, outcomes
    accounts = _accounts_by_email(server["url"])
    assert all(accounts[address] == 1 for address in addresses), accounts
    assert "Internal Server Error" not in server["log"].read_text()


def test_the_migrations_apply_to_a_database_that_already_holds_users() -> None:
    """The accounts table as the first migration made it, with users in it; then every later migration of
    every app. The users, their passwords and the case-insensitive uniqueness all survive."""
    name = f"{run_prefix()}populated_{unique()}"
    url = create_database(name)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shopcart.settings.test", "DATABASE_URL": url}
    try:
        manage("migrate", "accounts", "0001", "--noinput", "-v", "0", env=env)
        users = [("Ann", "ann@example.com"), ("Bob", "bob@example.com"), ("Cy", "cy@example.com")]
        with psycopg.connect(url) as conn:
            for user_name, email in users:
                conn.execute(
                    "INSERT INTO accounts_user (password, is_superuser, email, is_staff, is_active, date_joined, name)"
                    " VALUES (%s, false, %s, false, true, now(), %s)",
                    (make_password(PASSWORD), email, user_name),
                )

        manage("migrate", "--noinput", "-v", "0", env=env)

        unapplied = manage("showmigrations", "--plan", env=env).count("[ ]")
        assert unapplied == 0
        checked = manage("shell", "-c", _CHECK_AFTER_MIGRATING, env=env)
        result = json.loads(checked.split("RESULT=")[-1])
        assert result == {
            "users": sorted(email for _, email in users),
            "log_ins": [True, True, True],
            "second_ann": "IntegrityError",
        }
    finally:
        drop_database(name)


_CHECK_AFTER_MIGRATING = f"""
import json
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from accounts.models import User
emails = sorted(User.objects.values_list("email", flat=True))
log_ins = [authenticate(None, username=email.upper(), password={PASSWORD!r}) is not None for email in emails]
try:
    with transaction.atomic():
        User.objects.bulk_create([User(email="ANN@example.com", name="Ann again")])  # no normalising save()
    second = "created"
except IntegrityError:
    second = "IntegrityError"
print("RESULT=" + json.dumps({{"users": emails, "log_ins": log_ins, "second_ann": second}}))
"""


@pytest.mark.django_db
def test_the_suite_runs_on_postgresql() -> None:
    assert connection.vendor == "postgresql"
    assert Path(connection.settings_dict["NAME"]).name.startswith("test_")
