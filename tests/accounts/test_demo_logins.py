"""The demo and staff logins a newcomer can find (issue 17, item 12): `manage.py demo_logins` (`make logins`)
gives each a new password and prints it, creates a missing one, names a password that comes from the
settings without printing it; `seed` says where to get them once the users exist."""

from __future__ import annotations

import re
import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from accounts.services import ensure_demo_users
from tests.support import ROOT
from tests.support.accounts import logged_in_user_id, submit_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles")]
PRINTED = re.compile(r"^The (demo shopper|staff user): (\S+) password: (\S+)$", re.M)


@pytest.fixture(autouse=True)
def demo_addresses(settings: Any) -> dict[str, str]:
    """Addresses of this test's own (the seeded catalogs of other modules make and delete the usual ones)."""
    tag = uuid.uuid4().hex[:8]
    settings.DEMO_USER_EMAIL = f"demo-{tag}@shopcart.local"
    settings.STAFF_USER_EMAIL = f"admin-{tag}@shopcart.local"
    settings.DEMO_USER_PASSWORD = settings.STAFF_USER_PASSWORD = ""
    return {"demo shopper": settings.DEMO_USER_EMAIL, "staff user": settings.STAFF_USER_EMAIL}


def demo_logins(*args: str) -> str:
    out = StringIO()
    call_command("demo_logins", *args, stdout=out)
    return out.getvalue()


def logs_in(email: str, password: str) -> bool:
    client = Client(enforce_csrf_checks=True)
    return submit_login(client, email, password).status_code == 302 and logged_in_user_id(client) is not None


def test_the_command_gives_both_accounts_a_new_password_that_logs_in(demo_addresses: dict[str, str]) -> None:
    first = _created()
    printed = {label: (email, password) for label, email, password in PRINTED.findall(demo_logins())}
    assert {label: email for label, (email, _) in printed.items()} == demo_addresses
    for label, (email, password) in printed.items():
        assert password != first[label]
        assert logs_in(email, password)
        assert not logs_in(email, first[label])  # the old one ends with the reset
    staff = User.objects.get(email=demo_addresses["staff user"])
    assert (staff.is_staff, staff.is_superuser) == (True, True)
    assert Client().login(email=staff.email, password=printed["staff user"][1])


def test_missing_accounts_are_created_and_one_account_alone_can_be_reset(demo_addresses: dict[str, str]) -> None:
    printed = PRINTED.findall(demo_logins("--only", "shopper"))
    assert [(label, email) for label, email, _ in printed] == [("demo shopper", demo_addresses["demo shopper"])]
    assert logs_in(printed[0][1], printed[0][2])
    assert not User.objects.filter(email=demo_addresses["staff user"]).exists()


def test_a_password_from_the_settings_is_named_never_printed(settings: Any, demo_addresses: dict[str, str]) -> None:
    settings.DEMO_USER_PASSWORD = "Settings-Given-Password-31"
    _created()
    output = demo_logins("--only", "shopper")
    assert "Settings-Given-Password-31" not in output
    assert f"The demo shopper: {demo_addresses['demo shopper']} (the password in DEMO_USER_PASSWORD)" in output
    assert logs_in(demo_addresses["demo shopper"], "Settings-Given-Password-31")


def test_an_account_someone_locked_or_demoted_works_again(demo_addresses: dict[str, str]) -> None:
    _created()
    User.objects.filter(email__in=demo_addresses.values()).update(is_active=False, is_staff=False, is_superuser=False)
    printed = {label: password for label, _, password in PRINTED.findall(demo_logins())}
    assert logs_in(demo_addresses["demo shopper"], printed["demo shopper"])
    assert User.objects.get(email=demo_addresses["staff user"]).is_superuser
    assert not User.objects.get(email=demo_addresses["demo shopper"]).is_staff  # the shopper stays a shopper


def test_seed_says_where_the_logins_are_once_the_accounts_exist(demo_addresses: dict[str, str]) -> None:
    _created()
    lines = ensure_demo_users()
    for label, email in demo_addresses.items():
        assert f"The {label} {email} exists already; `make logins` gives it a new password." in lines
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^logins: .*\n\t\$\(PY\) manage\.py demo_logins$", makefile, re.M)
    readme = (ROOT / "README.md").read_text()
    assert "make logins" in readme


def _created() -> dict[str, str]:
    """Creates the accounts as the first `seed` does; the generated password of each, by label."""
    created = [re.fullmatch(r"Created the (demo shopper|staff user) \S+ (.*)", line) for line in ensure_demo_users()]
    assert all(created), created
    return {match.group(1): match.group(2).removeprefix("password: ") for match in created if match}
