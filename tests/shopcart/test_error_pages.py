"""Error pages keep the shop (issue 17, item 3): /nope, a missing product, a withdrawn one (410), a form
too large, the CSRF page and a dependency outage all show the shop's header: search, cart and account
links (a signed-in visitor's own), not just the logo. The password-change address people guess leads to
the page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.utils.functional import SimpleLazyObject

from catalog.services import set_product_active
from shopcart.http_errors import error_page
from tests.support.cart import make_product, make_user

pytestmark = [pytest.mark.django_db]


def header(html: str) -> str:
    match = re.search(r'<header class="site-header">(.*?)</header>', html, re.S)
    assert match, "no header"
    return match.group(1)


def assert_full_header(html: str, *, signed_in_as: str | None = None) -> None:
    top = header(html)
    assert 'role="search"' in top
    assert 'name="q"' in top
    assert 'href="/cart/"' in top
    assert 'id="mini-cart-count"' in top
    if signed_in_as:
        assert signed_in_as in top
        assert "Log out" in top
    else:
        assert 'href="/accounts/login/"' in top
        assert 'href="/accounts/signup/"' in top


def test_every_error_page_keeps_the_header_for_a_visitor() -> None:
    product = make_product()
    set_product_active(product_id=product.id, active=False)
    pages = {
        "/nope": Client().get("/nope"),
        "/products/nope": Client().get("/products/nope"),
        "withdrawn": Client().get(f"/products/{product.id}"),
        "too large": Client().post("/cart/add", {"quantity": "x" * 300_000}),
        "csrf": Client(enforce_csrf_checks=True).post("/cart/clear", {}),
        "unknown category": Client().get("/?category=Nope"),
    }
    assert {name: response.status_code for name, response in pages.items()} == {
        "/nope": 404,
        "/products/nope": 404,
        "withdrawn": 410,
        "too large": 413,
        "csrf": 403,
        "unknown category": 404,
    }
    for response in pages.values():
        assert_full_header(response.content.decode())
    withdrawn = pages["withdrawn"].content.decode()
    assert "is no longer sold in this shop" in withdrawn
    assert "There is nothing at this address" not in withdrawn


def test_a_signed_in_visitor_is_still_signed_in_on_an_error_page() -> None:
    user = make_user(name="Ada Lovelace")
    client = Client()
    client.force_login(user)
    for response in (client.get("/nope"), client.post("/cart/add", {"quantity": "x" * 300_000})):
        assert_full_header(response.content.decode(), signed_in_as="Ada Lovelace")


def test_the_header_leaves_out_what_it_cannot_read() -> None:
    """With the session unreadable (Redis down: the 503 page), the header still renders, without a user."""

    def unreadable() -> Any:
        raise ConnectionError("redis is down")

    request = RequestFactory().get("/cart/")
    request.user = SimpleLazyObject(unreadable)  # type: ignore[attr-defined]
    response = error_page(request, status=503, code="service_unavailable", title="Temporarily unavailable", message="x")
    assert response.status_code == 503
    assert_full_header(response.content.decode())
    bare = RequestFactory().get("/")  # before the auth middleware: no user at all
    assert_full_header(error_page(bare, status=400, code="x", title="Bad request", message="x").content.decode())


def test_the_password_change_address_people_guess_leads_to_the_page() -> None:
    client = Client()
    client.force_login(make_user())
    response = client.get("/accounts/password/change/", follow=True)
    assert response.redirect_chain[0][0] == "/accounts/password/"
    assert response.status_code == 200
    assert 'name="old_password"' in response.content.decode()
