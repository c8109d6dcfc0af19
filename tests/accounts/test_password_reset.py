"""Forgot password: Django's reset views and tokens, with the mail sent through a real SMTP server
(the stack's mail catcher, devstack/mailcatcher.py) and read back from it; never the locmem outbox."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User
from tests.support.accounts import (
    PASSWORD,
    caught,
    csrf_token,
    logged_in_user_id,
    submit_login,
    unique_address,
    wait_for_mail,
)

NEW_PASSWORD = "quince-lantern-58"
LINK = re.compile(r"https?://testserver(/accounts/password/reset/[^/\s]+/[^/\s]+/)")


pytestmark = pytest.mark.usefixtures("real_smtp", "fresh_throttles")


def ask_for_reset(client: Client, email: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/accounts/password/reset/")
    return client.post("/accounts/password/reset/", {"csrfmiddlewaretoken": token, "email": email})


@pytest.mark.django_db
def test_log_in_page_links_to_the_reset_page() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert 'href="/accounts/password/reset/"' in page
    assert "Forgot your password?" in page
    admin_login = Client().get("/admin/login/").content.decode()
    assert 'href="/admin/password_reset/"' in admin_login
    assert Client().get("/admin/password_reset/")["Location"] == "/accounts/password/reset/"


@pytest.mark.django_db
def test_reset_by_mail_through_smtp_then_log_in_with_the_new_password(settings: Any) -> None:
    address = unique_address("reset")
    user = User.objects.create_user(email=address, password=PASSWORD, name="Rae <b>")
    browser = Client(enforce_csrf_checks=True)

    response = ask_for_reset(browser, address.upper())
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert "Check your email" in browser.get(response["Location"]).content.decode()

    message = wait_for_mail(settings, address)
    assert mail.outbox == []  # delivered by SMTP, not kept in memory
    assert message["subject"] == "Your shopcart password"
    assert message["from"] == settings.DEFAULT_FROM_EMAIL
    assert "Hello Rae <b>," in message["text"]  # a text mail: the name as written
    link = LINK.search(message["text"])
    assert link, message["text"]

    # Django moves the token from the URL into the session, then shows the form.
    form_page = browser.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    form_url = form_page.redirect_chain[-1][0]
    token = csrf_token(browser, form_url)
    done = browser.post(
        form_url, {"csrfmiddlewaretoken": token, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert done["Location"] == "/accounts/password/reset/done/"
    assert "Your new password is set" in browser.get(done["Location"]).content.decode()

    shopper = Client(enforce_csrf_checks=True)
    assert submit_login(shopper, address, PASSWORD).status_code == 200  # the old one is refused
    assert submit_login(shopper, address, NEW_PASSWORD).status_code == 302
    assert logged_in_user_id(shopper) == str(user.pk)

    # The link worked once.
    again = Client().get(link.group(1), follow=True).content.decode()
    assert "This link does not work any more" in again


@pytest.mark.django_db
def test_an_unknown_address_gets_the_same_answer_and_no_mail(settings: Any) -> None:
    known, unknown = unique_address("reset"), unique_address("reset")
    User.objects.create_user(email=known, password=PASSWORD, name="Kim")

    answers = [ask_for_reset(Client(enforce_csrf_checks=True), address) for address in (unknown, known)]
    assert [(r.status_code, r["Location"]) for r in answers] == [(302, "/accounts/password/reset/sent/")] * 2

    # Mail goes out in order, so once the known address's mail is in, the unknown one's would be too.
    wait_for_mail(settings, known)
    assert caught(settings, unknown) == []


@pytest.mark.django_db
def test_reset_requests_are_throttled_per_email(settings: Any) -> None:
    settings.PASSWORD_RESET_EMAIL_LIMIT = 2
    address = unique_address("reset")  # no account: the limit must not tell whether there is one
    statuses = [ask_for_reset(Client(enforce_csrf_checks=True), address.title()).status_code for _ in range(2)]
    assert statuses == [302, 302]

    refused = ask_for_reset(Client(enforce_csrf_checks=True), address)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.PASSWORD_RESET_WINDOW
    assert "Too many password-reset requests" in refused.content.decode()
    # Another address from the same client is still served.
    assert ask_for_reset(Client(enforce_csrf_checks=True), unique_address("reset")).status_code == 302


@pytest.mark.django_db
def test_reset_requests_are_throttled_per_client_address(settings: Any) -> None:
    settings.PASSWORD_RESET_ADDRESS_LIMIT = 3
    for _ in range(3):
        assert ask_for_reset(Client(enforce_csrf_checks=True), unique_address("reset")).status_code == 302
    assert ask_for_reset(Client(enforce_csrf_checks=True), unique_address("reset")).status_code == 429
    other_client = Client(enforce_csrf_checks=True, REMOTE_ADDR="10.9.8.7")
    assert ask_for_reset(other_client, unique_address("reset")).status_code == 302
