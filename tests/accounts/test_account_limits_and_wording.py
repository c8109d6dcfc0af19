"""A display name has a sensible length limit, the same on the sign-up page and in the API (issue 17,
item 1: it is in every page's header); and every form that asks for a new password twice says the same
words when the two differ (item 5)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.forms import PASSWORD_MISMATCH_MESSAGE
from accounts.services import NAME_MAX_LENGTH
from tests.support.accounts import csrf_token
from tests.support.cart import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles")]

PASSWORD = "plum-orchard-91"
NEW = "quince-harbour-57"
NAME_MESSAGE = f"Use at most {NAME_MAX_LENGTH} characters."


def errors_of(html: str, field: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return [unescape(error) for error in re.findall(r"<li>(.*?)</li>", match.group(1))] if match else []


def test_a_name_past_the_limit_is_refused_on_the_page_and_in_the_api() -> None:
    long_name = "W" * (NAME_MAX_LENGTH + 1)
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token(browser, "/accounts/signup/")
    page = browser.post(
        "/accounts/signup/",
        {"csrfmiddlewaretoken": token, "name": long_name, "email": "w@example.com", "password1": PASSWORD,
         "password2": PASSWORD},
    )  # fmt: skip
    assert page.status_code == 200
    assert errors_of(page.content.decode(), "name") == [NAME_MESSAGE]
    assert f'maxlength="{NAME_MAX_LENGTH}"' in page.content.decode()

    api = Client().post(
        "/api/register",
        data=json.dumps({"name": long_name, "email": "w@example.com", "password": PASSWORD}),
        content_type="application/json",
    )
    assert api.status_code == 400
    assert api.json()["error"]["fields"]["name"] == [NAME_MESSAGE]

    fits = Client().post(
        "/api/register",
        data=json.dumps({"name": "W" * NAME_MAX_LENGTH, "email": "w@example.com", "password": PASSWORD}),
        content_type="application/json",
    )
    assert fits.status_code == 201


def test_every_new_password_form_says_the_same_when_the_two_differ() -> None:
    said = {}
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token(browser, "/accounts/signup/")
    signup = browser.post(
        "/accounts/signup/",
        {"csrfmiddlewaretoken": token, "name": "Bea", "email": "bea@example.com", "password1": PASSWORD,
         "password2": PASSWORD + "x"},
    )  # fmt: skip
    said["sign-up"] = errors_of(signup.content.decode(), "password2")

    user = make_user()
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    client.force_login(user)
    change = client.post(
        "/accounts/password/", {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW + "x"}
    )
    said["change"] = errors_of(change.content.decode(), "new_password2")

    reset = Client()
    link = f"/accounts/password/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/"
    form_page = reset.get(f"{link}{default_token_generator.make_token(user)}/", follow=True)
    assert form_page.status_code == 200
    confirm = reset.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW + "x"})
    said["reset"] = errors_of(confirm.content.decode(), "new_password2")

    assert said == {name: [PASSWORD_MISMATCH_MESSAGE] for name in ("sign-up", "change", "reset")}
    assert PASSWORD_MISMATCH_MESSAGE == "The two passwords do not match."
