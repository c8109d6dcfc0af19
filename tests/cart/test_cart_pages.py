"""The cart pages (no JavaScript): add, update, remove, clear with a message after each action and for
each refusal, safe redirects, CSRF, the mini-cart count, and the anonymous cart merged at log-in."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from elasticsearch import NotFoundError

from cart import selectors, services
from cart.documents import carts_alias
from cart.errors import CartBusy
from cart.owners import SESSION_KEY
from cart.schemas import CartOut
from catalog.services import set_product_active
from shopcart import es
from tests.support.cart import make_product, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]


def _messages(response: Any) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(r'<li class="message[^"]*"><span role="\w+">(.*?)</span></li>', response.content.decode())
    ]


def _badge(response: Any) -> str:
    match = re.search(r'id="mini-cart-count">([^<]*)<', response.content.decode())
    assert match, "no mini-cart badge on the page"
    return match.group(1)


def _anon_cart_id(client: Client) -> str:
    return f"anon-{client.session[SESSION_KEY]}"


def _add(client: Client, product_id: str, quantity: Any = 1, **extra: Any) -> Any:
    return client.post("/cart/add", {"product_id": product_id, "quantity": quantity, **extra})


def test_anonymous_shopper_adds_and_sees_the_cart() -> None:
    product = make_product(price="4.25", stock=10)
    client = Client()
    assert _badge(client.get("/cart/")) == "0"
    assert "Your cart is empty" in client.get("/cart/").content.decode()

    response = _add(client, product.id, 2, next=f"/products/{product.id}")
    assert response.status_code == 302
    assert response["Location"] == f"/products/{product.id}"
    page = client.get("/cart/")
    assert f"Added 2 of “{product.name}” to your cart." in _messages(page)
    body = page.content.decode()
    assert product.name in body
    assert "$8.50" in body
    assert _badge(page) == "2"
    assert selectors.get_cart(cart_id=_anon_cart_id(client)).line(product.id).quantity == 2


def test_the_cart_page_reads_the_cart_once_for_its_lines_and_the_header_count(monkeypatch: Any) -> None:
    product = make_product(stock=10)
    client = Client()
    _add(client, product.id, 3)
    reads: list[str] = []
    real_read_cart = selectors.read_cart

    def counted(**kwargs: Any) -> Any:
        reads.append(kwargs["cart_id"])
        return real_read_cart(**kwargs)

    monkeypatch.setattr(selectors, "read_cart", counted)
    page = client.get("/cart/")
    assert _badge(page) == "3"
    assert reads == [_anon_cart_id(client)]
    reads.clear()
    assert _badge(client.get(f"/products/{product.id}")) == "3"  # any other page reads it for the count alone
    assert reads == [_anon_cart_id(client)]


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com/x", "javascript:alert(1)", ""])
def test_add_never_redirects_off_site(target: str) -> None:
    product = make_product()
    response = _add(Client(), product.id, 1, next=target)
    assert response.status_code == 302
    assert response["Location"] == "/cart/"


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "Enter a whole number from 1 to 99."),
        ("-1", "Enter a whole number from 1 to 99."),
        ("1.5", "Enter a whole number from 1 to 99."),
        ("x", "Enter a whole number from 1 to 99."),
        ("1000", "You can have at most 99 of one product in your cart."),
    ],
)
def test_add_refuses_bad_quantities_with_a_message(quantity: str, message: str) -> None:
    product = make_product(stock=5000)
    client = Client()
    response = _add(client, product.id, quantity, next="/cart/")
    assert (response.status_code, response["Location"]) == (302, "/cart/")
    page = client.get("/cart/")
    assert _messages(page) == [message]
    assert _badge(page) == "0"


def test_add_refuses_unknown_inactive_out_of_stock_and_over_the_maximum(settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 5
    inactive = make_product(active=False)
    sold_out = make_product(stock=0)
    scarce = make_product(stock=3)
    plenty = make_product(stock=100)
    client = Client()
    refusals = [
        ("no-such-product", 1, "This product is not available (it does not exist or is no longer sold)."),
        (inactive.id, 1, "This product is not available (it does not exist or is no longer sold)."),
        (sold_out.id, 1, f"“{sold_out.name}” is out of stock."),
        (scarce.id, 4, f"Only 3 of “{scarce.name}” in stock."),
    ]
    for product_id, quantity, message in refusals:
        _add(client, product_id, quantity)
        assert _messages(client.get("/cart/")) == [message], product_id
    # Over the maximum and over stock after merging with what is in the cart already.
    _add(client, plenty.id, 4)
    _add(client, plenty.id, 2)
    _add(client, scarce.id, 2)
    _add(client, scarce.id, 2)
    messages = _messages(client.get("/cart/"))
    assert messages[1] == f"You can have at most 5 of “{plenty.name}” in your cart. You have 4 already."
    assert messages[3] == f"Only 3 of “{scarce.name}” in stock (you have 2 in your cart)."
    quantities = {line.product_id: line.quantity for line in selectors.get_cart(cart_id=_anon_cart_id(client)).lines}
    assert quantities == {plenty.id: 4, scarce.id: 2}


def test_a_busy_cart_is_a_message_not_an_error_page(monkeypatch) -> None:
    product = make_product()

    def busy(**kwargs: Any) -> Any:
        raise CartBusy("Your cart is being changed by another request at the same moment; please try again.")

    monkeypatch.setattr(services, "add_item", busy)
    client = Client()
    response = _add(client, product.id, 1, next="/cart/")
    assert response.status_code == 302
    assert _messages(client.get("/cart/")) == [
        "Your cart is being changed by another request at the same moment; please try again."
    ]


def test_update_remove_and_clear() -> None:
    one = make_product(price="1.50", stock=10)
    two = make_product(price="2.00", stock=10)
    client = Client()
    _add(client, one.id, 1)
    _add(client, two.id, 1)

    assert client.post("/cart/update", {"product_id": one.id, "quantity": "4"})["Location"] == "/cart/"
    page = client.get("/cart/")
    assert f"You now have 4 of “{one.name}” in your cart." in _messages(page)
    assert 'id="cart-subtotal">$8.00' in page.content.decode()
    assert _badge(page) == "5"

    for bad, message in (("-1", "Enter a whole number from 1 to 99."), ("11", f"Only 10 of “{one.name}” in stock.")):
        client.post("/cart/update", {"product_id": one.id, "quantity": bad})
        assert _messages(client.get("/cart/")) == [message]

    client.post("/cart/remove", {"product_id": one.id})
    page = client.get("/cart/")
    assert _messages(page) == [f"Removed “{one.name}” from your cart."]
    assert _badge(page) == "1"
    client.post("/cart/remove", {"product_id": one.id})
    assert _messages(client.get("/cart/")) == ["This product is not in your cart."]

    assert client.get("/cart/clear").status_code == 200  # "Empty your cart?" first (tests/cart/test_quantity_rule.py)
    client.post("/cart/clear")
    page = client.get("/cart/")
    assert _messages(page) == ["Your cart is empty now."]
    assert _badge(page) == "0"
    assert "Your cart is empty" in page.content.decode()


def test_update_and_remove_without_a_cart_are_messages() -> None:
    client = Client()
    assert client.post("/cart/update", {"product_id": "x", "quantity": "1"}).status_code == 302
    assert _messages(client.get("/cart/")) == ["This product is not in your cart."]
    assert client.post("/cart/remove", {"product_id": ""}).status_code == 302
    assert _messages(client.get("/cart/")) == ["Choose a product."]


def test_the_cart_page_flags_price_changes_and_unavailable_lines() -> None:
    from catalog.services import ProductInput, update_product

    changed = make_product(price="10.00")
    gone = make_product(price="3.00")
    client = Client()
    _add(client, changed.id, 1)
    _add(client, gone.id, 2)
    update_product(
        product_id=changed.id,
        data=ProductInput(
            sku=changed.sku, name=changed.name, description="", category="Test", price="11.00", currency="USD", stock=50
        ),
    )
    set_product_active(product_id=gone.id, active=False)
    body = client.get("/cart/").content.decode()
    assert "Price went up by $1.00 since you added it (was $10.00)." in body
    assert "No longer available: not counted in the total." in body
    assert 'id="cart-subtotal">$11.00' in body


def _reprice(product: Any, *, price: str, stock: int) -> None:
    from catalog.services import ProductInput, update_product

    update_product(
        product_id=product.id,
        data=ProductInput(
            sku=product.sku,
            name=product.name,
            description="",
            category="Test",
            price=price,
            currency="USD",
            stock=stock,
        ),
    )


def test_money_reads_like_money_and_a_price_drop_says_by_how_much() -> None:
    pricey = make_product(price="5193.99", stock=5)
    client = Client()
    _add(client, pricey.id, 2)
    _reprice(pricey, price="5000.49", stock=5)
    body = client.get("/cart/").content.decode()
    assert "Price went down by $193.50 since you added it (was $5,193.99)." in body
    assert 'id="cart-subtotal">$10,000.98' in body
    assert "USD" not in re.sub(r"<[^>]+>", "", body)  # no "10000.98 USD" anywhere a shopper reads
    product_page = client.get(f"/products/{pricey.id}").content.decode()
    assert '<p class="price">$5,000.49</p>' in product_page


def test_a_sold_out_line_is_not_counted_and_not_only_0_left() -> None:
    kept, sold_out = make_product(price="3.00", stock=5), make_product(price="4.00", stock=5)
    client = Client()
    _add(client, kept.id, 1)
    _add(client, sold_out.id, 2)
    _reprice(sold_out, price="4.00", stock=0)
    page = client.get("/cart/")
    body = page.content.decode()
    assert "Only 0 left" not in body
    assert "Out of stock now: not counted in the total." in body
    assert 'id="cart-subtotal">$3.00' in body
    assert _badge(page) == "1"
    summary = selectors.get_summary(cart_id=_anon_cart_id(client))  # the one builder the API answers with too
    api = CartOut.of(summary).model_dump()
    assert (api["itemCount"], api["lineCount"], api["subtotal"]) == (1, 1, "3.00")
    assert [line["available"] for line in api["lines"]] == [True, False]


def test_csrf_is_enforced_and_only_post_changes_the_cart() -> None:
    product = make_product()
    client = Client(enforce_csrf_checks=True)
    for path in ("/cart/add", "/cart/update", "/cart/remove", "/cart/clear"):
        assert client.post(path, {"product_id": product.id, "quantity": "1"}).status_code == 403
        # GET changes nothing: 405, or for /cart/clear the question "Empty your cart?" (here, nothing to empty).
        assert client.get(path).status_code == (302 if path == "/cart/clear" else 405)
    # With the token from the product page's add-to-cart form it works.
    detail = client.get(f"/products/{product.id}").content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', detail)
    assert match, "the product page has no add-to-cart form"
    form = {"product_id": product.id, "quantity": "1", "csrfmiddlewaretoken": match.group(1)}
    assert client.post("/cart/add", form).status_code == 302


def test_the_mini_cart_never_breaks_a_page(monkeypatch) -> None:
    import elastic_transport

    def down(**kwargs: Any) -> Any:
        raise elastic_transport.ConnectionError("elasticsearch is down")

    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.cache import SessionStore

    request.user = AnonymousUser()
    request.session = SessionStore()
    request.session[SESSION_KEY] = "a" * 24
    monkeypatch.setattr(selectors, "get_cart", down)
    rendered = render_to_string("partials/nav.html", request=request)
    assert 'id="mini-cart-count">0<' in rendered


def test_anonymous_cart_merges_into_the_users_cart_at_login(settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 10
    scarce = make_product(stock=3)
    plenty = make_product(stock=100)
    user = make_user()
    services.add_item(cart_id=f"user-{user.pk}", product_id=plenty.id, quantity=8)
    client = Client()
    _add(client, scarce.id, 2)
    _add(client, plenty.id, 5)
    anon_id = _anon_cart_id(client)
    services.add_item(cart_id=f"user-{user.pk}", product_id=scarce.id, quantity=2)

    client.force_login(user)

    quantities = {line.product_id: line.quantity for line in selectors.get_cart(cart_id=f"user-{user.pk}").lines}
    assert quantities == {plenty.id: 10, scarce.id: 3}  # 8+5 capped at 10; 2+2 capped at stock 3
    with pytest.raises(NotFoundError):
        es.client().get(index=carts_alias(), id=anon_id)
    assert SESSION_KEY not in client.session
    page = client.get("/cart/")
    assert _badge(page) == "13"


def test_a_merge_that_failed_at_login_is_finished_on_the_next_cart_page(monkeypatch) -> None:
    product = make_product(stock=10)
    user = make_user()
    client = Client()
    _add(client, product.id, 2)

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("elasticsearch hiccup")

    monkeypatch.setattr(services, "merge_anonymous_cart", broken)
    client.force_login(user)  # the log-in itself succeeds
    assert SESSION_KEY in client.session
    monkeypatch.undo()

    page = client.get("/cart/")
    assert _badge(page) == "2"
    assert selectors.get_cart(cart_id=f"user-{user.pk}").line(product.id).quantity == 2
    assert SESSION_KEY not in client.session


def test_signed_in_users_use_their_own_cart() -> None:
    product = make_product()
    alice, bob = make_user("Alice"), make_user("Bob")
    as_alice, as_bob = Client(), Client()
    as_alice.force_login(alice)
    as_bob.force_login(bob)
    _add(as_alice, product.id, 3)
    assert _badge(as_alice.get("/cart/")) == "3"
    assert _badge(as_bob.get("/cart/")) == "0"
    as_bob.post("/cart/clear")
    as_bob.post("/cart/remove", {"product_id": product.id})
    assert selectors.get_cart(cart_id=f"user-{alice.pk}").line(product.id).quantity == 3


def test_merge_messages_read_properly_and_a_shortfall_is_a_warning(settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 10
    scarce, plenty = make_product(stock=3, name="Scarce Kettle"), make_product(stock=100)
    user = make_user()
    services.add_item(cart_id=f"user-{user.pk}", product_id=scarce.id, quantity=2)
    client = Client()
    _add(client, scarce.id, 2)
    _add(client, plenty.id, 1)
    client.get("/cart/")  # the "Added" messages are read
    client.post("/accounts/login/", {"email": user.email, "password": "a-Long-password-1"})

    page = client.get("/cart/")
    assert _messages(page) == [
        "We moved 2 items from your guest cart into your cart.",
        "“Scarce Kettle”: only 1 of the 2 in your guest cart moved to your cart (because of the stock left).",
    ]
    body = page.content.decode()
    assert re.search(r'<li class="message message-warning"><span role="alert">“Scarce Kettle”', body)


def test_the_moved_items_message_counts_in_words() -> None:
    from cart.guest_merge import moved_items_message

    assert moved_items_message(1) == "We moved 1 item from your guest cart into your cart."
    assert moved_items_message(3) == "We moved 3 items from your guest cart into your cart."


def test_another_currency_is_refused_without_pointing_at_a_checkout() -> None:
    dollars, euros = make_product(currency="USD"), make_product(currency="EUR", name="Euro Teapot")
    client = Client()
    _add(client, dollars.id, 1)
    client.get("/cart/")  # the "Added" message is read
    _add(client, euros.id, 1)
    assert _messages(client.get("/cart/")) == [
        "“Euro Teapot” is priced in EUR, and your cart holds USD items only. Empty your cart first to buy it."
    ]
