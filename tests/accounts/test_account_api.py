"""One's own account through the JSON API (issue 17, item 11), against the real services: the name, the
email change confirmed by the link mailed to the new address (read back from the real SMTP mail
catcher), the password (a fresh token; every earlier token ends), deleting the account with its cart and
the cart's events; and the OpenAPI schema documenting each route."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from accounts.services import NAME_MAX_LENGTH
from cart import selectors as cart_selectors
from shopcart.eventbus import EventBusUnavailable
from tests.support.accounts import PASSWORD, submit_login, unique_address, wait_for_mail
from tests.support.api import ApiClient, api_client, bearer
from tests.support.cart import make_product, make_user, stream_messages
from tests.support.polling import wait_for
from tests.support.stack import stack

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles", "real_smtp")]

NEW_PASSWORD = "quince-harbour-57"
TOKEN_IN_LINK = re.compile(r"https?://testserver/accounts/email/confirm/([^/\s]+)/")


@pytest.fixture
def ann() -> User:
    return make_user("Ann", password=PASSWORD)


@pytest.fixture
def client(ann: User) -> ApiClient:
    return api_client(ann)


def error(response: Any) -> dict[str, Any]:
    return response.json()["error"]  # type: ignore[no-any-return]


def test_me_says_the_name_email_and_any_pending_change(client: ApiClient, ann: User) -> None:
    assert client.get("/api/me").json() == {"id": ann.pk, "name": "Ann", "email": ann.email, "pending_email": None}


def test_the_name_is_changed_and_refused_when_empty_or_too_long(client: ApiClient, ann: User) -> None:
    changed = client.patch_json("/api/me", {"name": "  Ann Lovelace "})
    assert changed.status_code == 200
    assert changed.json()["name"] == "Ann Lovelace"
    for bad, message in (
        ("  ", "Enter your name."),
        ("x" * (NAME_MAX_LENGTH + 1), f"Use at most {NAME_MAX_LENGTH} characters."),
    ):
        refused = client.patch_json("/api/me", {"name": bad})
        assert refused.status_code == 400
        assert error(refused)["fields"] == {"name": [message]}
    assert client.get("/api/me").json()["name"] == "Ann Lovelace"
    assert Client().patch("/api/me", data={"name": "x"}, content_type="application/json").status_code == 401


def test_the_email_changes_when_the_mailed_token_is_confirmed(client: ApiClient, ann: User, settings: Any) -> None:
    old, new = ann.email, unique_address("new")
    asked = client.post_json("/api/me/email", {"email": new.upper(), "current_password": PASSWORD})
    assert asked.status_code == 202
    assert asked.json() == {"pending_email": new, "expires_in": settings.EMAIL_CHANGE_TIMEOUT}
    assert client.get("/api/me").json()["pending_email"] == new
    assert client.get("/api/me").json()["email"] == old

    token = TOKEN_IN_LINK.search(wait_for_mail(settings, new)["text"]).group(1)  # type: ignore[union-attr]
    confirmed = ApiClient().post_json("/api/email/confirm", {"token": token})  # no Bearer token needed
    assert confirmed.status_code == 200
    assert confirmed.json() == {"id": ann.pk, "name": "Ann", "email": new, "pending_email": None}
    assert client.get("/api/me").json()["email"] == new  # the token still works: the password is the same
    assert ApiClient().log_in(new, PASSWORD).status_code == 200

    again = ApiClient().post_json("/api/email/confirm", {"token": token})
    assert again.status_code == 400
    assert error(again)["code"] == "invalid_link"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "current_password": PASSWORD}, "email"),
        ({"email": "new@example.com", "current_password": "not-it"}, "current_password"),
        ({"email": "new@example.com"}, "current_password"),
    ],
)
def test_a_bad_email_change_is_400_naming_the_field(client: ApiClient, body: dict[str, str], field: str) -> None:
    refused = client.post_json("/api/me/email", body)
    assert refused.status_code == 400
    assert field in error(refused)["fields"]
    assert client.get("/api/me").json()["pending_email"] is None


def test_an_address_another_account_has_is_409_in_any_case(client: ApiClient) -> None:
    other = User.objects.create_user(email=unique_address("bea"), password=PASSWORD, name="Bea")
    refused = client.post_json("/api/me/email", {"email": other.email.upper(), "current_password": PASSWORD})
    assert refused.status_code == 409
    assert error(refused)["code"] == "email_taken"


def test_a_pending_change_can_be_cancelled(client: ApiClient, settings: Any) -> None:
    new = unique_address("new")
    client.post_json("/api/me/email", {"email": new, "current_password": PASSWORD})
    token = TOKEN_IN_LINK.search(wait_for_mail(settings, new)["text"]).group(1)  # type: ignore[union-attr]
    assert client.delete("/api/me/email").status_code == 204
    assert client.get("/api/me").json()["pending_email"] is None
    assert ApiClient().post_json("/api/email/confirm", {"token": token}).status_code == 400


def test_a_password_change_gives_a_new_token_and_ends_every_earlier_one(client: ApiClient, ann: User) -> None:
    other_token = ApiClient().login_token(ann.email, PASSWORD)
    browser = Client()
    assert submit_login(browser, ann.email, PASSWORD).status_code == 302
    same = client.post_json("/api/me/password", {"current_password": PASSWORD, "new_password": PASSWORD})
    assert same.status_code == 400
    assert error(same)["fields"] == {"new_password": ["Choose a new password: this one is your current password."]}
    weak = client.post_json("/api/me/password", {"current_password": PASSWORD, "new_password": "12345"})
    assert weak.status_code == 400
    assert "new_password" in error(weak)["fields"]
    wrong = client.post_json("/api/me/password", {"current_password": "not-it", "new_password": NEW_PASSWORD})
    assert error(wrong)["fields"] == {"current_password": ["Your current password is not correct."]}

    changed = client.post_json("/api/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 200
    fresh = changed.json()["auth_token"]
    assert changed.json()["token_type"] == "Bearer"
    assert client.get("/api/me").status_code == 401  # the token that asked, too
    assert ApiClient().get("/api/me", **bearer(other_token)).status_code == 401
    assert ApiClient(fresh).get("/api/me").status_code == 200
    assert browser.get("/accounts/").status_code == 302  # the web session ended too: to the log-in page
    assert ApiClient().log_in(ann.email, PASSWORD).status_code == 401
    assert ApiClient().log_in(ann.email, NEW_PASSWORD).status_code == 200


def test_wrong_current_passwords_are_throttled_per_account(client: ApiClient, ann: User, settings: Any) -> None:
    for number in range(settings.LOGIN_FAILURE_LIMIT):
        body = {"current_password": f"guess-{number}", "new_password": NEW_PASSWORD}
        assert client.post_json("/api/me/password", body).status_code == 400
    blocked = client.post_json("/api/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert client.send("DELETE", "/api/me", {"current_password": PASSWORD}).status_code == 429
    ann.refresh_from_db()
    assert ann.check_password(PASSWORD)


def test_deleting_the_account_deletes_its_cart_with_a_cleared_event(
    client: ApiClient, ann: User, cart_events_env: dict[str, str]
) -> None:
    product = make_product()
    assert client.post_json("/api/user/cart", {"productId": product.id, "quantity": 3}).status_code == 200
    wrong = client.send("DELETE", "/api/me", {"current_password": "not-it"})
    assert wrong.status_code == 400
    assert User.objects.filter(pk=ann.pk).exists()

    assert client.send("DELETE", "/api/me", {"current_password": PASSWORD}).status_code == 204
    assert not User.objects.filter(pk=ann.pk).exists()
    assert not cart_selectors.get_cart(cart_id=f"user-{ann.pk}").exists
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/user/cart").status_code == 401
    events = [m["event"] for m in stream_messages(cart_events_env["CART_EVENTS_STREAM"])]
    owner = f"user-{ann.pk}"
    assert [(e["type"], e["owner"]) for e in events] == [("item_added", owner), ("cleared", owner)]
    assert events[-1]["lines"] == [{"productId": product.id, "quantity": 3}]


def test_an_account_without_a_cart_is_deleted_too(client: ApiClient, ann: User) -> None:
    assert client.send("DELETE", "/api/me", {"current_password": PASSWORD}).status_code == 204
    assert not User.objects.filter(pk=ann.pk).exists()


def test_the_openapi_schema_documents_every_account_route() -> None:
    schema = Client().get("/api/openapi.json").json()
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert {
        ("/api/me", "get"),
        ("/api/me", "patch"),
        ("/api/me", "delete"),
        ("/api/me/email", "post"),
        ("/api/me/email", "delete"),
        ("/api/email/confirm", "post"),
        ("/api/me/password", "post"),
        ("/api/suggestions", "get"),
    } <= operations
    assert set(schema["paths"]["/api/me/password"]["post"]["responses"]) >= {"200", "400", "401", "429"}
    assert set(schema["paths"]["/api/me/email"]["post"]["responses"]) >= {"202", "400", "401", "409", "429"}
    assert set(schema["paths"]["/api/me"]["delete"]["responses"]) >= {"204", "400", "401", "429", "503"}


@pytest.mark.slow
@pytest.mark.usefixtures("relay_thread")  # the relay runs in web processes; this test's requests are in-process
def test_with_nats_down_the_account_stays_until_its_cart_event_is_out(
    client: ApiClient, ann: User, cart_events_env: dict[str, str], settings: Any
) -> None:
    """No event is deleted with its cart: while NATS is down the deletion answers 503 and the account
    stays (its cart emptied, the `cleared` event waiting in it); once NATS is back the relay sends the
    event, and deleting again finishes, with each event on the stream once."""
    settings.CART_RELAY_INTERVAL = 0.5
    settings.CART_RELAY_GRACE_SECONDS = 1.0
    product = make_product()
    assert client.post_json("/api/user/cart", {"productId": product.id, "quantity": 1}).status_code == 200
    stream = cart_events_env["CART_EVENTS_STREAM"]
    stack("stop", "nats")
    try:
        refused = client.send("DELETE", "/api/me", {"current_password": PASSWORD})
        assert refused.status_code == 503
        assert error(refused)["code"] == "service_unavailable"
        assert User.objects.filter(pk=ann.pk).exists()
        cart = cart_selectors.get_cart(cart_id=f"user-{ann.pk}")
        assert cart.exists
        assert not cart.lines
    finally:
        stack("start", "nats")

    def types() -> list[str] | None:
        try:
            return [m["event"]["type"] for m in stream_messages(stream)]
        except EventBusUnavailable:  # NATS restarting: not yet
            return None

    wait_for(lambda: types() == ["item_added", "cleared"], timeout=30, describe=lambda: f"stream: {types()}")
    assert client.send("DELETE", "/api/me", {"current_password": PASSWORD}).status_code == 204
    assert not User.objects.filter(pk=ann.pk).exists()
    assert not cart_selectors.get_cart(cart_id=f"user-{ann.pk}").exists
    assert [m["event"]["type"] for m in stream_messages(stream)] == ["item_added", "cleared"]
