"""One rule and one message for a quantity, on the pages and in the API (issue 17, item 5): the same
input is refused with the same words everywhere (an empty box, 1.5 and 2.0 alike, a number past the
per-line maximum however large); a quantity of 0 removes the line on the cart page and in the API alike;
and "Empty the cart" asks first, on a page that works without JavaScript (item 10)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client

from cart import selectors
from cart.owners import SESSION_KEY
from tests.support.api import api_client
from tests.support.cart import make_product, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]

CART = "/api/user/cart"
WHOLE = "Enter a whole number from 1 to 99."
AT_MOST = "You can have at most 99 of one product in your cart."


def _messages(response: Any) -> list[str]:
    found = re.findall(r'<li class="message[^"]*"><span role="\w+">(.*?)</span></li>', response.content.decode())
    return [html.unescape(message) for message in found]


def _page_refusal(client: Client, path: str, data: dict[str, str]) -> list[str]:
    client.post(path, data)
    return _messages(client.get("/cart/"))


def _api_refusal(response: Any) -> list[str]:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]["quantity"]


# (typed in a form, sent in a JSON body, what both are told)
SAME_INPUTS = [
    ("", None, WHOLE),
    ("1.5", 1.5, WHOLE),
    ("2.0", 2.0, WHOLE),
    ("x", "x", WHOLE),
    ("0", 0, WHOLE),
    ("-1", -1, WHOLE),
    ("100", 100, AT_MOST),
    ("1000001", 1_000_001, AT_MOST),
    ("1" + "0" * 29, 10**29, AT_MOST),
]


@pytest.mark.parametrize(("typed", "sent", "message"), SAME_INPUTS)
def test_adding_says_the_same_on_the_product_page_and_in_the_api(typed: str, sent: Any, message: str) -> None:
    product = make_product(stock=5000)
    page = _page_refusal(Client(), "/cart/add", {"product_id": product.id, "quantity": typed})
    body: dict[str, Any] = {"productId": product.id}
    if sent is not None:
        body["quantity"] = sent
    else:
        body["quantity"] = ""  # an empty form box; in JSON, an empty string
    api = _api_refusal(api_client(make_user()).post_json(CART, body))
    assert page == api == [message]


@pytest.mark.parametrize(("typed", "sent", "message"), [case for case in SAME_INPUTS if case[0] != "0"])
def test_setting_a_quantity_says_the_same_in_the_cart_and_in_the_api(typed: str, sent: Any, message: str) -> None:
    product = make_product(stock=5000)
    shopper = Client()
    shopper.post("/cart/add", {"product_id": product.id, "quantity": "1"})
    shopper.get("/cart/")  # its "Added" message shown
    page = _page_refusal(shopper, "/cart/update", {"product_id": product.id, "quantity": typed})
    api = api_client(make_user())
    api.post_json(CART, {"productId": product.id, "quantity": 1})
    refused = _api_refusal(api.patch_json(f"{CART}/items/{product.id}", {"quantity": "" if sent is None else sent}))
    assert page == refused == [message]


def test_the_api_form_body_reads_a_quantity_as_the_page_does() -> None:
    product = make_product(stock=50)
    api = api_client(make_user())
    for typed in ("2.0", "", "1.5"):
        response = api.post(CART, {"productId": product.id, "quantity": typed})  # a form body
        assert _api_refusal(response) == [WHOLE], typed
    assert api.post(CART, {"productId": product.id, "quantity": " 2 "}).status_code == 200


def test_a_quantity_of_zero_removes_the_line_on_the_page_and_in_the_api() -> None:
    one, two = make_product(stock=10), make_product(stock=10)
    shopper = Client()
    for product in (one, two):
        shopper.post("/cart/add", {"product_id": product.id, "quantity": "2"})
    shopper.get("/cart/")  # the "Added" messages shown
    shopper.post("/cart/update", {"product_id": one.id, "quantity": "0"})
    page = shopper.get("/cart/")
    assert _messages(page) == [f"Removed “{one.name}” from your cart."]
    cart_id = f"anon-{shopper.session[SESSION_KEY]}"
    assert [line.product_id for line in selectors.get_cart(cart_id=cart_id).lines] == [two.id]
    assert 'min="0"' in page.content.decode()  # the box allows it, and says what it does
    assert "A quantity of 0 removes the product." in page.content.decode()

    api = api_client(make_user())
    for product in (one, two):
        api.post_json(CART, {"productId": product.id, "quantity": 2})
    response = api.patch_json(f"{CART}/items/{one.id}", {"quantity": 0})
    assert response.status_code == 200
    assert [line["productId"] for line in response.json()["lines"]] == [two.id]
    assert api.patch_json(f"{CART}/items/{one.id}", {"quantity": 0}).status_code == 404  # gone already


def test_emptying_the_cart_asks_first_without_javascript() -> None:
    product = make_product(stock=10)
    shopper = Client()
    shopper.post("/cart/add", {"product_id": product.id, "quantity": "3"})
    cart_page = shopper.get("/cart/").content.decode()
    assert '<a href="/cart/clear" class="button secondary">Empty the cart…</a>' in cart_page
    assert 'action="/cart/clear"' not in cart_page  # no one-click emptying

    question = shopper.get("/cart/clear")
    assert question.status_code == 200
    text = question.content.decode()
    assert "<h1>Empty your cart?</h1>" in text
    assert f"3 \u00d7 {html.escape(product.name)}" in text  # "3 times" sign
    assert '<a href="/cart/">No, keep my cart</a>' in text
    cart_id = f"anon-{shopper.session[SESSION_KEY]}"
    assert selectors.get_cart(cart_id=cart_id).lines  # asking changed nothing

    token = re.search(r'name="idempotency_key" value="([^"]+)"', text)
    assert token
    assert shopper.post("/cart/clear", {"idempotency_key": token[1]})["Location"] == "/cart/"
    assert not selectors.get_cart(cart_id=cart_id).lines
    assert shopper.get("/cart/clear")["Location"] == "/cart/"  # nothing to empty: back to the cart
