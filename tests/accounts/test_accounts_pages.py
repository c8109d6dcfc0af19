"""Account pages with CSRF enforced, as a browser without JavaScript uses them: sign up, log in,
log out, password change, throttling; and the admin's user pages and log-in."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.cache import SessionStore
from django.test import Client

from accounts.models import User
from tests.support.accounts import PASSWORD, csrf_token, logged_in_user_id, submit_login

pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def ann(db: None) -> User:
    return User.objects.create_user(email="ann@example.com", password=PASSWORD, name="Ann")


# --- sign up ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signup_creates_the_account_and_logs_in(browser: Client) -> None:
    token = csrf_token(browser, "/accounts/signup/")
    response = browser.post(
        "/accounts/signup/",
        {
            "csrfmiddlewaretoken": token,
            "name": "Bea",
            "email": "Bea@Example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get()
    assert (user.email, user.name) == ("bea@example.com", "Bea")
    assert logged_in_user_id(browser) == str(user.pk)
    page = browser.get("/accounts/password/")
    assert "Bea" in page.content.decode()


@pytest.mark.django_db
def test_signup_without_csrf_token_is_403(browser: Client) -> None:
    csrf_token(browser, "/accounts/signup/")  # has the cookie, but does not send the form's token
    response = browser.post(
        "/accounts/signup/", {"name": "Bea", "email": "bea@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response.status_code == 403
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "aNn@Example.com"])
def test_signup_refuses_a_taken_email_in_any_case(browser: Client, ann: User, email: str) -> None:
    token = csrf_token(browser, "/accounts/signup/")
    response = browser.post(
        "/accounts/signup/",
        {"csrfmiddlewaretoken": token, "name": "Ann 2", "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200
    assert "An account with this email address already exists." in response.content.decode()
    assert User.objects.count() == 1
    assert logged_in_user_id(browser) is None


@pytest.mark.django_db
def test_signup_applies_the_password_validators_and_the_confirmation(browser: Client) -> None:
    token = csrf_token(browser, "/accounts/signup/")
    weak = browser.post(
        "/accounts/signup/",
        {
            "csrfmiddlewaretoken": token,
            "name": "Bea",
            "email": "bea@example.com",
            "password1": "1234",
            "password2": "1234",
        },
    ).content.decode()
    mismatch = browser.post(
        "/accounts/signup/",
        {
            "csrfmiddlewaretoken": token,
            "name": "Bea",
            "email": "bea@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD + "x",
        },
    ).content.decode()

    assert "too short" in weak
    assert "entirely numeric" in weak
    assert "The two passwords do not match." in mismatch
    assert not User.objects.exists()


def test_signup_shows_the_password_rules_up_front(browser: Client, db: None) -> None:
    page = browser.get("/accounts/signup/").content.decode()
    assert "Your password must contain at least 8 characters." in page
    assert "be entirely numeric." in page
    assert 'aria-describedby="id_password1_helptext"' in page
    assert 'id="id_password1_helptext"' in page


@pytest.mark.django_db
def test_field_errors_are_linked_to_their_inputs(browser: Client) -> None:
    token = csrf_token(browser, "/accounts/signup/")
    # A malformed address is caught by the form, a weak password by the service: both are linked.
    for name, email, password in (("email", "not-an-address", PASSWORD), ("password1", "bea@example.com", "1")):
        page = browser.post(
            "/accounts/signup/",
            {"csrfmiddlewaretoken": token, "name": "Bea", "email": email, "password1": password, "password2": password},
        ).content.decode()
        field = re.search(rf'<input [^>]*name="{name}"[^>]*>', page)
        assert field, name
        described = re.search(r'aria-describedby="([^"]+)"', field.group(0))
        assert described, field.group(0)
        for element_id in described.group(1).split():
            assert f'id="{element_id}"' in page, element_id  # every id the input names exists
        assert f"id_{name}_error" in described.group(1).split()
        assert 'aria-invalid="true"' in field.group(0)


@pytest.mark.parametrize("url", ["/accounts/signup/", "/accounts/login/"])
def test_logged_in_users_are_sent_on_from_sign_up_and_log_in(browser: Client, ann: User, url: str) -> None:
    browser.force_login(ann)
    response = browser.get(url)
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = browser.get("/accounts/password/").content.decode()  # the next page shows the message
    assert "You are already logged in as ann@example.com. To use another account, log out first." in page
    assert browser.get(f"{url}?next=/cart/")["Location"] == "/cart/"
    assert browser.get(f"{url}?next={url}")["Location"] == "/"  # never back to itself


@pytest.mark.parametrize("url", ["/accounts/signup/", "/accounts/login/"])
def test_pages_say_email_not_e_mail(browser: Client, db: None, url: str) -> None:
    page = browser.get(url).content.decode()
    assert ">Email:</label>" in page
    assert "e-mail" not in page.lower()


# --- log in -----------------------------------------------------------------------------------


def test_login_by_email_in_any_case(browser: Client, ann: User) -> None:
    response = submit_login(browser, "ANN@example.COM", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_user_id(browser) == str(ann.pk)


def test_login_follows_a_safe_next_only(browser: Client, ann: User) -> None:
    token = csrf_token(browser, "/accounts/login/?next=/cart/")
    safe = browser.post(
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "email": "ann@example.com", "password": PASSWORD, "next": "/cart/"},
    )
    assert safe["Location"] == "/cart/"

    other = Client(enforce_csrf_checks=True)
    token = csrf_token(other, "/accounts/login/")
    unsafe = other.post(
        "/accounts/login/",
        {
            "csrfmiddlewaretoken": token,
            "email": "ann@example.com",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert unsafe["Location"] == "/"


def test_wrong_password_shows_an_error(browser: Client, ann: User) -> None:
    response = submit_login(browser, "ann@example.com", "not-the-password")

    assert response.status_code == 200
    assert "The email address or password is incorrect." in response.content.decode()
    assert logged_in_user_id(browser) is None


def test_login_without_csrf_token_is_403(browser: Client, ann: User) -> None:
    csrf_token(browser, "/accounts/login/")
    response = browser.post("/accounts/login/", {"email": "ann@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert logged_in_user_id(browser) is None


def test_login_rotates_the_session_key(browser: Client, ann: User) -> None:
    session = browser.session
    session["chosen_before_login"] = "blue"
    session.save()
    key_before = session.session_key

    response = submit_login(browser, "ann@example.com", PASSWORD)

    assert response.status_code == 302
    key_after = response.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert key_after
    assert key_after != key_before
    # The old key is gone from Redis (no session fixation) and the data moved with the user.
    assert not SessionStore().exists(key_before)
    assert browser.session["chosen_before_login"] == "blue"
    assert logged_in_user_id(browser) == str(ann.pk)


def test_login_throttling_answers_429_and_expires(browser: Client, ann: User, settings: Any) -> None:
    settings.LOGIN_FAILURE_WINDOW = 2
    for _ in range(5):
        assert submit_login(browser, "ann@example.com", "guess").status_code == 200

    blocked = submit_login(browser, "ann@example.com", PASSWORD)
    assert blocked.status_code == 429
    retry_after = int(blocked["Retry-After"])
    assert 1 <= retry_after <= 2
    assert "Too many failed log-in attempts. Please wait" in blocked.content.decode()
    assert '<form method="post"' in blocked.content.decode()  # still a usable page
    assert logged_in_user_id(browser) is None

    time.sleep(retry_after + 0.5)
    assert submit_login(browser, "ann@example.com", PASSWORD).status_code == 302
    assert logged_in_user_id(browser) == str(ann.pk)


def test_a_signed_in_page_reads_its_user_from_the_cache_not_the_database(
    browser: Client, ann: User, django_assert_num_queries: Any
) -> None:
    """The session's user comes through the auth cache (accounts/backends.py), as a token's does: a
    signed-in page needs no database query, and keeps working while the database fails over."""
    assert submit_login(browser, "ann@example.com", PASSWORD).status_code == 302
    assert browser.get("/accounts/password/").status_code == 200  # the first read fills the entry

    with django_assert_num_queries(0):
        page = browser.get("/accounts/password/")
    assert page.status_code == 200
    assert page.context["user"] == ann
    assert "Ann" in page.content.decode()

    ann.set_password("another-Long-password-2")
    ann.save()  # a new version: the cached entry is not served again
    assert browser.get("/accounts/password/").status_code == 302  # the session of the old password ends


# --- log out ----------------------------------------------------------------------------------


def test_logout_is_post_only_and_needs_the_csrf_token(browser: Client, ann: User) -> None:
    assert submit_login(browser, "ann@example.com", PASSWORD).status_code == 302
    token = csrf_token(browser, "/accounts/password/")  # the nav's log-out form on any page

    assert browser.get("/accounts/logout/").status_code == 405
    assert logged_in_user_id(browser) == str(ann.pk)
    assert browser.post("/accounts/logout/").status_code == 403
    assert logged_in_user_id(browser) == str(ann.pk)

    response = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_user_id(browser) is None
    assert browser.get("/accounts/password/").status_code == 302  # now sent to the login page


# --- password change --------------------------------------------------------------------------


def test_password_change_needs_login(browser: Client, db: None) -> None:
    response = browser.get("/accounts/password/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/accounts/password/")


def test_password_change(browser: Client, ann: User) -> None:
    assert submit_login(browser, "ann@example.com", PASSWORD).status_code == 302
    new_password = "quince-harbour-57"
    form = {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password}

    assert browser.post("/accounts/password/", form).status_code == 403

    token = csrf_token(browser, "/accounts/password/")
    wrong_old = browser.post("/accounts/password/", {**form, "old_password": "nope", "csrfmiddlewaretoken": token})
    assert wrong_old.status_code == 200
    assert "Your old password was entered incorrectly" in wrong_old.content.decode()

    changed = browser.post("/accounts/password/", {**form, "csrfmiddlewaretoken": token})
    assert changed.status_code == 302
    assert changed["Location"] == "/accounts/password/done/"
    assert browser.get("/accounts/password/done/").status_code == 200  # this session survived
    ann.refresh_from_db()
    assert ann.check_password(new_password)

    fresh = Client(enforce_csrf_checks=True)
    assert submit_login(fresh, "ann@example.com", PASSWORD).status_code == 200
    assert submit_login(fresh, "ann@example.com", new_password).status_code == 302


def test_wrong_current_passwords_in_the_password_change_form_are_throttled(
    browser: Client, ann: User, settings: Any
) -> None:
    settings.LOGIN_FAILURE_WINDOW = 1
    assert submit_login(browser, "ann@example.com", PASSWORD).status_code == 302
    token = csrf_token(browser, "/accounts/password/")
    new_password = "quince-harbour-57"
    form = {"new_password1": new_password, "new_password2": new_password, "csrfmiddlewaretoken": token}

    for number in range(settings.LOGIN_FAILURE_LIMIT):
        assert browser.post("/accounts/password/", {**form, "old_password": f"guess-{number}"}).status_code == 200
    # Blocked, even with the right current password, and the page says why and for how long.
    blocked = browser.post("/accounts/password/", {**form, "old_password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many wrong current passwords. Please wait" in blocked.content.decode()
    assert "Your old password was entered incorrectly" not in blocked.content.decode()
    ann.refresh_from_db()
    assert ann.check_password(PASSWORD)

    time.sleep(int(blocked["Retry-After"]) + 0.2)
    assert browser.post("/accounts/password/", {**form, "old_password": PASSWORD}).status_code == 302
    ann.refresh_from_db()
    assert ann.check_password(new_password)


# --- admin ------------------------------------------------------------------------------------


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_superuser(email="boss@example.com", password=PASSWORD, name="Boss")


def test_admin_login_is_throttled_too(browser: Client, staff: User) -> None:
    def admin_login(password: str) -> Any:
        token = csrf_token(browser, "/admin/login/")
        return browser.post(
            "/admin/login/", {"csrfmiddlewaretoken": token, "username": "boss@example.com", "password": password}
        )

    for _ in range(5):
        admin_login("guess")
    blocked = admin_login(PASSWORD)

    assert "Too many failed log-in attempts" in blocked.content.decode()
    assert logged_in_user_id(browser) is None


def test_admin_lists_searches_and_adds_users(staff: User, ann: User) -> None:
    client = Client()
    client.force_login(staff)

    listing = client.get("/admin/accounts/user/", {"q": "ann"}).content.decode()
    assert "ann@example.com" in listing
    assert "boss@example.com" not in listing

    form = {"email": "Cleo@Example.com", "name": "Cleo", "usable_password": "true"}
    form |= {"password1": PASSWORD, "password2": PASSWORD, "_save": "Save"}
    assert client.post("/admin/accounts/user/add/", form).status_code == 302
    assert User.objects.get(name="Cleo").email == "cleo@example.com"

    duplicate = client.post("/admin/accounts/user/add/", {**form, "email": "ANN@example.com", "name": "Ann again"})
    assert duplicate.status_code == 200
    assert "An account with this email address already exists." in duplicate.content.decode()
    assert User.objects.count() == 3
