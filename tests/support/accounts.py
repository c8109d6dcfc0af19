"""The accounts side of the tests: a clean throttling slate and mail through the real SMTP catcher
(fixtures, registered by tests/conftest.py), the log-in pages as a browser without JavaScript uses them,
unique addresses, and mail read back from the catcher."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

PASSWORD = "plum-orchard-91"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    """No throttling counted by another test, before or after this one: every test client comes from
    127.0.0.1, so one test's failed log-ins or reset requests would otherwise count against the next."""
    from django.core.cache import cache

    from accounts.throttling import KEY_PREFIX

    cache.delete_pattern(f"{KEY_PREFIX}*")
    yield
    cache.delete_pattern(f"{KEY_PREFIX}*")


@pytest.fixture
def real_smtp(settings: Any) -> Iterator[None]:
    """Mail through the stack's SMTP mail catcher (pytest-django switches the suite to the in-memory
    backend); nothing of the test is still queued when the settings are restored."""
    from shopcart.mail import wait_until_sent

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    yield
    wait_until_sent()


def unique_address(tag: str = "user") -> str:
    """An address nobody else uses: the catcher is shared by every run."""
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def csrf_token(client: Client, url: str) -> str:
    """Loads the page like a browser and takes the token from its form."""
    response = client.get(url)
    assert response.status_code == 200
    match = CSRF_INPUT.search(response.content.decode())
    assert match, f"no CSRF field on {url}"
    return match.group(1)


def logged_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def submit_login(client: Client, email: str, password: str) -> Any:
    token = csrf_token(client, "/accounts/login/")
    return client.post("/accounts/login/", {"csrfmiddlewaretoken": token, "email": email, "password": password})


def caught(settings: Any, address: str) -> list[dict[str, str]]:
    """The messages the stack's mail catcher (devstack/mailcatcher.py) holds for `address`."""
    query = urllib.parse.urlencode({"to": address})
    with urllib.request.urlopen(f"{settings.MAILCATCHER_URL}/api/messages?{query}", timeout=5) as response:  # noqa: S310
        return json.load(response)


def wait_for_mail(settings: Any, address: str, timeout: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if messages := caught(settings, address):
            return messages[0]
        time.sleep(0.05)
    raise AssertionError(f"no mail for {address} reached the catcher at {settings.MAILCATCHER_URL}")
