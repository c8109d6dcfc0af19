"""The account page (issue 17, item 11) as a browser without JavaScript uses it, CSRF enforced, against the
real services: the header's name links to it; the name; the email address, changed only once the link
mailed to the new address (through the real SMTP mail catcher) is followed, with the uniqueness races;
the password (not the current one again); deleting the account with its cart, whose events reach the
stream."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts import services
from accounts.errors import EmailTaken
from accounts.models import User
from cart import selectors as cart_selectors
from tests.support.accounts import (
    PASSWORD,
    caught,
    csrf_token,
    logged_in_user_id,
    submit_login,
    unique_address,
    wait_for_mail,
)
from tests.support.api import api_client
from tests.support.cart import make_product, make_user, stream_messages
from tests.support.polling import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles", "real_smtp")]

LINK = re.compile(r"https?://testserver(/accounts/email/confirm/[^/\s]+/)")
NEW_PASSWORD = "quince-harbour-57"


@pytest.fixture
def ann() -> User:
    return make_user("Ann", password=PASSWORD)


@pytest.fixture
def browser(ann: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert submit_login(client, ann.email, PASSWORD).status_code == 302
    return client


def post(client: Client, page: str, url: str, data: dict[str, str]) -> Any:
    """A form of `page` submitted to `url`, as a browser does: with the page's CSRF token."""
    return client.post(url, {"csrfmiddlewaretoken": csrf_token(client, page), **data})


def ask_for_email_change(client: Client, email: str, password: str = PASSWORD) -> Any:
    return post(client, "/accounts/", "/accounts/email/", {"email": email, "current_password": password})


def mailed_link(settings: Any, to: str) -> str:
    message = wait_for_mail(settings, to)
    found = LINK.search(message["text"])
    assert found, message["text"]
    return found.group(1)


# --- the page and the header ------------------------------------------------------------------------------


def test_the_header_name_links_to_the_account_page(browser: Client, ann: User) -> None:
    html = browser.get("/accounts/password/").content.decode()
    assert re.search(r'<a href="/accounts/"[^>]*>Ann<', html)
    page = browser.get("/accounts/")
    assert page.status_code == 200
    text = page.content.decode()
    assert ann.email in text
    for part in ('action="/accounts/"', 'action="/accounts/email/"', 'href="/accounts/password/"'):
        assert part in text
    assert 'href="/accounts/delete/"' in text


@pytest.mark.parametrize("url", ["/accounts/", "/accounts/delete/"])
def test_the_account_pages_need_a_log_in(url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_name_is_changed_and_refused_when_empty_or_too_long(browser: Client, ann: User) -> None:
    saved = post(browser, "/accounts/", "/accounts/", {"name": "  Ann Lovelace "})
    assert saved.status_code == 302
    assert "Your name is saved." in browser.get(saved["Location"]).content.decode()
    ann.refresh_from_db()
    assert ann.name == "Ann Lovelace"

    for bad, message in (
        ("   ", "Enter your name."),
        ("x" * (services.NAME_MAX_LENGTH + 1), f"Use at most {services.NAME_MAX_LENGTH} characters."),
    ):
        refused = post(browser, "/accounts/", "/accounts/", {"name": bad})
        assert refused.status_code == 200
        assert message in refused.content.decode()
    ann.refresh_from_db()
    assert ann.name == "Ann Lovelace"


def test_a_form_without_its_csrf_token_is_refused(browser: Client, ann: User) -> None:
    assert browser.post("/accounts/", {"name": "Mallory"}).status_code == 403
    assert browser.post("/accounts/delete/", {"current_password": PASSWORD}).status_code == 403
    ann.refresh_from_db()
    assert ann.name == "Ann"


# --- the email address: a link to the new one ---------------------------------------------------------------


def test_the_email_changes_only_when_the_link_mailed_to_the_new_address_is_followed(
    browser: Client, ann: User, settings: Any
) -> None:
    old, new = ann.email, unique_address("new")
    asked = ask_for_email_change(browser, new.upper())
    assert asked.status_code == 302
    page = browser.get("/accounts/").content.decode()
    assert f"We sent a link to {new}." in page
    assert 'id="pending-email"' in page
    ann.refresh_from_db()
    assert ann.email == old  # not yet

    link = mailed_link(settings, new)
    assert caught(settings, old) == []  # the link goes to the new address only
    # Opening it (a mail scanner does) changes nothing: a person confirms with the button.
    opened = Client(enforce_csrf_checks=True)
    shown = opened.get(link)
    assert shown.status_code == 200
    assert new in shown.content.decode()
    ann.refresh_from_db()
    assert ann.email == old

    done = opened.post(link, {"csrfmiddlewaretoken": csrf_token(opened, link)})
    assert done.status_code == 200
    assert "Your email address is changed" in done.content.decode()
    ann.refresh_from_db()
    assert ann.email == new
    notice = wait_for_mail(settings, old)  # the old address is told
    assert new in notice["text"]

    # Log-in now takes the new address, and the link worked once.
    assert submit_login(Client(enforce_csrf_checks=True), new, PASSWORD).status_code == 302
    assert submit_login(Client(enforce_csrf_checks=True), old, PASSWORD).status_code == 200
    again = Client().post(link)
    assert again.status_code == 400
    assert "does not work any more" in again.content.decode()


def test_an_email_change_needs_the_current_password_and_a_new_valid_address(browser: Client, ann: User) -> None:
    wrong = ask_for_email_change(browser, unique_address("new"), password="not-it")
    assert wrong.status_code == 200
    assert "Your current password is not correct." in wrong.content.decode()
    same = ask_for_email_change(browser, ann.email.upper())
    assert "That is your email address already." in same.content.decode()
    invalid = ask_for_email_change(browser, "not-an-address")
    assert "Enter a valid email address." in invalid.content.decode()
    assert 'id="pending-email"' not in browser.get("/accounts/").content.decode()


def test_an_address_another_account_has_in_any_case_is_refused(browser: Client, ann: User) -> None:
    other = User.objects.create_user(email=unique_address("bea"), password=PASSWORD, name="Bea")
    refused = ask_for_email_change(browser, other.email.upper())
    assert refused.status_code == 200
    assert "An account with this email address already exists." in refused.content.decode()


def test_an_address_taken_between_the_request_and_the_link_is_refused_at_the_link(
    browser: Client, ann: User, settings: Any
) -> None:
    new = unique_address("new")
    ask_for_email_change(browser, new)
    link = mailed_link(settings, new)
    User.objects.create_user(email=new.upper(), password=PASSWORD, name="Quicker")  # signs up with it first

    opened = Client(enforce_csrf_checks=True)
    refused = opened.post(link, {"csrfmiddlewaretoken": csrf_token(opened, link)})
    assert refused.status_code == 409
    assert "An account with this email address already exists." in refused.content.decode()
    ann.refresh_from_db()
    assert ann.email != new


def test_two_accounts_confirming_one_address_at_once_the_database_lets_one_win(
    ann: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the write and the write can race (another account confirms the same address in
    between); the case-insensitive unique constraint decides, and the loser gets the same refusal."""
    bea = User.objects.create_user(email=unique_address("bea"), password=PASSWORD, name="Bea")
    new = unique_address("both")
    site = "http://testserver/"
    services.request_email_change(user=ann, email=new, current_password=PASSWORD, site_url=site)
    ann_link = mailed_link(settings, new)
    services.request_email_change(user=bea, email=new.upper(), current_password=PASSWORD, site_url=site)
    links = wait_for(
        lambda: (
            [LINK.search(m["text"]).group(1) for m in caught(settings, new)][1:]
            and [LINK.search(m["text"]).group(1) for m in caught(settings, new)]
        )
    )
    bea_link = next(link for link in links if link != ann_link)

    services.confirm_email_change(token=_token(ann_link))
    monkeypatch.setattr(services, "email_taken", lambda **_: False)  # Bea's check ran before Ann's write
    with pytest.raises(EmailTaken):
        services.confirm_email_change(token=_token(bea_link))
    bea.refresh_from_db()
    assert bea.email != new
    assert get_user_model().objects.filter(email__iexact=new).count() == 1


def _token(link: str) -> str:
    return link.rstrip("/").rpartition("/")[2]


def test_a_newer_request_a_cancel_or_a_password_change_retires_the_link(
    browser: Client, ann: User, settings: Any
) -> None:
    first, second = unique_address("first"), unique_address("second")
    ask_for_email_change(browser, first)
    first_link = mailed_link(settings, first)
    ask_for_email_change(browser, second)
    second_link = mailed_link(settings, second)
    assert "does not work any more" in Client().get(first_link).content.decode()  # replaced

    cancelled = post(browser, "/accounts/", "/accounts/email/cancel/", {})
    assert cancelled.status_code == 302
    assert "does not work any more" in Client().get(second_link).content.decode()

    third = unique_address("third")
    ask_for_email_change(browser, third)
    third_link = mailed_link(settings, third)
    ann.set_password(NEW_PASSWORD)
    ann.save()
    refused = Client().post(third_link)
    assert refused.status_code == 400
    ann.refresh_from_db()
    assert ann.email not in (first, second, third)


def test_a_forged_or_expired_link_changes_nothing(browser: Client, ann: User, settings: Any) -> None:
    new = unique_address("new")
    ask_for_email_change(browser, new)
    link = mailed_link(settings, new)
    assert Client().post(link[:-3] + "xx/").status_code == 400  # the signature no longer matches
    settings.EMAIL_CHANGE_TIMEOUT = -1  # every link is past its age now
    assert Client().post(link).status_code == 400
    ann.refresh_from_db()
    assert ann.email != new


def test_email_change_mails_per_account_are_limited(browser: Client, ann: User, settings: Any) -> None:
    settings.EMAIL_CHANGE_LIMIT = 2
    for _ in range(2):
        assert ask_for_email_change(browser, unique_address("many")).status_code == 302
    blocked = ask_for_email_change(browser, unique_address("many"))
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert "Too many email-change requests." in blocked.content.decode()


# --- the password ------------------------------------------------------------------------------------------


def test_a_new_password_equal_to_the_current_one_is_refused(browser: Client, ann: User) -> None:
    form = {"old_password": PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD}
    refused = post(browser, "/accounts/password/", "/accounts/password/", form)
    assert refused.status_code == 200
    assert "Choose a new password: this one is your current password." in refused.content.decode()

    # With a wrong current password the page does not say whether the new one is the current one.
    guess = post(browser, "/accounts/password/", "/accounts/password/", {**form, "old_password": "nope"})
    assert "this one is your current password" not in guess.content.decode()

    changed = post(
        browser,
        "/accounts/password/",
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    ann.refresh_from_db()
    assert ann.check_password(NEW_PASSWORD)


# --- deleting the account --------------------------------------------------------------------------------------


def test_deleting_the_account_needs_the_password_then_deletes_it_and_its_cart_with_events(
    browser: Client, ann: User, cart_events_env: dict[str, str]
) -> None:
    products = [make_product(), make_product()]
    client = api_client(ann)
    for product in products:
        assert client.post_json("/api/user/cart", {"productId": product.id, "quantity": 2}).status_code == 200
    other_session = Client()
    assert submit_login(other_session, ann.email, PASSWORD).status_code == 302
    cart_id = f"user-{ann.pk}"

    assert browser.get("/accounts/delete/").status_code == 200
    wrong = post(browser, "/accounts/delete/", "/accounts/delete/", {"current_password": "not-it"})
    assert wrong.status_code == 200
    assert "Your current password is not correct." in wrong.content.decode()
    assert User.objects.filter(pk=ann.pk).exists()

    deleted = post(browser, "/accounts/delete/", "/accounts/delete/", {"current_password": PASSWORD})
    assert deleted.status_code == 302
    assert deleted["Location"] == "/"
    assert "Your account and your cart are deleted." in browser.get("/accounts/login/").content.decode()
    assert not User.objects.filter(pk=ann.pk).exists()
    assert not cart_selectors.get_cart(cart_id=cart_id).exists
    assert logged_in_user_id(browser) is None
    # Its other session and its API token are of nobody now.
    assert other_session.get("/accounts/").status_code == 302
    assert client.get("/api/me").status_code == 401

    events = [m["event"] for m in stream_messages(cart_events_env["CART_EVENTS_STREAM"])]
    assert [e["type"] for e in events] == ["item_added", "item_added", "cleared"]
    assert events[-1]["owner"] == cart_id
    assert events[-1]["userId"] == ann.pk
    assert events[-1]["lines"] == [{"productId": p.id, "quantity": 2} for p in products]


def test_wrong_passwords_when_deleting_are_throttled(browser: Client, ann: User, settings: Any) -> None:
    for number in range(settings.LOGIN_FAILURE_LIMIT):
        post(browser, "/accounts/delete/", "/accounts/delete/", {"current_password": f"guess-{number}"})
    blocked = post(browser, "/accounts/delete/", "/accounts/delete/", {"current_password": PASSWORD})
    assert blocked.status_code == 429
    assert "Retry-After" in blocked
    assert User.objects.filter(pk=ann.pk).exists()
