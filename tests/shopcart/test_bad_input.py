"""Bad input and security, against the real services:

* one named test per defect of the original (docs/original-api.md, 1-8), pointing at the fuller
  tests elsewhere where they exist;
* hostile text (HTML/script) in product names, user names, email addresses and search terms is
  escaped on every page that shows it;
* CSRF on every POST form of the site (found by walking the pages, so a new form without a test fails);
* oversized bodies refused with 413 and non-JSON API bodies with 415, in the site's error shapes;
* the admin refuses non-staff;
* malformed JSON, wrong types, unicode edge cases, very long strings, bad quantities and product ids
  with path tricks all answer 4xx in the error shape, never 5xx.

`manage.py check --deploy` under the production settings is proven by
tests/shopcart/test_deployment.py::test_check_deploy_is_clean_under_production_settings; the schema-driven
fuzzing by tests/shopcart/test_api_schema.py.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.test import Client, override_settings

from accounts import tokens
from accounts.models import User
from cart import selectors as cart_selectors
from cart import services as cart_services
from cart import versions, write_engine
from catalog import selectors as catalog_selectors
from catalog.selectors import Product
from catalog.services import set_product_active
from tests.support import unique
from tests.support.api import ApiClient, api_client
from tests.support.cart import make_product, make_user, wipe_cart

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env", "fresh_throttles")]

PASSWORD = "plum-orchard-91"
USER_PASSWORD = "a-Long-password-1"  # make_user's
CART = "/api/user/cart"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# Text a hostile user would put anywhere: it must come back as text, never as markup.
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>\"'&"


@pytest.fixture(scope="module")
def product() -> Product:
    """Shared by the module's tests, which only read it (writing a product waits for a refresh, ~1 s)."""
    return make_product(price="12.50", stock=20)


@pytest.fixture
def staff() -> User:
    return User.objects.create_superuser(email=f"{unique('staff')}@example.com", password=PASSWORD, name="Staff")


def _error(response: Any) -> dict[str, Any]:
    """The `error` object of a JSON error response, after checking the shape."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str), body
    assert body["error"]["code"], body
    assert isinstance(body["error"]["message"], str), body
    assert body["error"]["message"], body
    return body["error"]


def _quantity(client: Client, product_id: str) -> int:
    lines = client.get(CART).json()["lines"]
    return next((line["quantity"] for line in lines if line["productId"] == product_id), 0)


# -- the defects of the original (docs/original-api.md) -------------------------------------------------


def test_defect_1_tokens_are_signed_with_the_shared_secret_not_a_per_process_key() -> None:
    """Across real processes: tests/accounts/test_accounts_api.py::test_token_issued_by_another_process_is_accepted
    and ::test_token_from_a_process_with_another_secret_is_refused. Here: the key is a function of
    SECRET_KEY alone, so anything holding the secret (a restarted process, another replica) verifies."""
    user = make_user()
    token = tokens.encode(tokens.new_claims(user_id=user.pk, password_hash=user.password))
    key = tokens.signing_key(settings.SECRET_KEY)  # derived afresh, as another process would
    assert jwt.decode(token, key, algorithms=["HS256"])["sub"] == str(user.pk)
    assert ApiClient(token).get("/api/me").status_code == 200
    with override_settings(SECRET_KEY="another-deployment-" + "x" * 40):
        assert ApiClient(token).get("/api/me").status_code == 401


def test_defect_2_a_concurrent_cart_change_is_never_lost(monkeypatch: pytest.MonkeyPatch, product: Product) -> None:
    """The original read the cart, changed it and wrote it back blindly. Here another add lands between
    the version this request starts from (the cart's last known version) and its write; both count. Under
    real concurrency: tests/cart/test_cart_concurrency.py and tests/cart/test_cart_services.py."""
    user = make_user()
    cart_id = f"user-{user.pk}"
    cart_services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)  # an existing cart: an update
    real_last_known = write_engine.STORE.last_known

    def known_then_someone_else_adds(cart_id: str) -> versions.Known:
        snapshot = real_last_known(cart_id)
        monkeypatch.setattr(write_engine.STORE, "last_known", real_last_known)  # only the first start races
        cart_services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
        return snapshot  # now stale

    monkeypatch.setattr(write_engine.STORE, "last_known", known_then_someone_else_adds)
    client = api_client(user)
    response = client.post_json(CART, {"productId": product.id, "quantity": 2})

    assert response.status_code == 200
    assert response.json()["lines"][0]["quantity"] == 4  # 1 before, 1 from the other request, 2 from this one
    assert cart_selectors.read_cart(cart_id=cart_id).lines[0].quantity == 4


def test_defect_3_what_was_just_written_is_read_at_once(product: Product) -> None:
    """The original found users and carts by search, which misses writes not yet refreshed."""
    email = f"{unique('fresh')}@example.com"
    client = ApiClient()
    registered = client.post_json("/api/register", {"name": "Fresh", "email": email, "password": PASSWORD})
    assert registered.status_code == 201
    wipe_cart(f"user-{registered.json()['id']}")  # ids restart after each test's rollback; carts do not
    login = client.log_in(email, PASSWORD)
    assert login.status_code == 200
    api = ApiClient(login.json()["auth_token"])
    assert api.post_json(CART, {"productId": product.id, "quantity": 1}).status_code == 200
    assert _quantity(api, product.id) == 1


BAD_ADDS = [
    ({"productId": "kit-0001"}, "quantity"),
    ({"quantity": 1}, "productId"),
    ({"productId": "PRODUCT", "quantity": 0}, "quantity"),
    ({"productId": "PRODUCT", "quantity": -1}, "quantity"),
    ({"productId": "PRODUCT", "quantity": 1.5}, "quantity"),
    ({"productId": "PRODUCT", "quantity": "2"}, "quantity"),
    ({"productId": "PRODUCT", "quantity": True}, "quantity"),
    ({"productId": "PRODUCT", "quantity": None}, "quantity"),
    ({"productId": "PRODUCT", "quantity": 10**30}, "quantity"),
    ({"productId": "PRODUCT", "quantity": 1e300}, "quantity"),
    ({"productId": "PRODUCT", "quantity": 100}, "quantity"),  # over the per-line maximum
    ({"productId": "PRODUCT", "quantity": 21}, "quantity"),  # over the stock
    ({"productId": "", "quantity": 1}, "productId"),
    ({"productId": 42, "quantity": 1}, "productId"),
    ({"productId": ["kit-0001"], "quantity": 1}, "productId"),
    ({"productId": "no-such-product", "quantity": 1}, "productId"),
    ({"productId": "x" * 101, "quantity": 1}, "productId"),
]


@pytest.mark.parametrize(("body", "field"), BAD_ADDS)
def test_defect_4_product_and_quantity_are_validated(product: Product, body: dict[str, Any], field: str) -> None:
    """More in tests/cart/test_cart_api.py (bad quantities, unknown and inactive products, stock, maximum)."""
    if body.get("productId") == "PRODUCT":
        body = {**body, "productId": product.id}
    client = api_client(make_user())
    response = client.post_json(CART, body)
    assert response.status_code == 400, response.content
    assert field in (_error(response).get("fields") or {}), response.json()
    assert client.get(CART).json()["lines"] == []


def test_defect_4_an_inactive_product_cannot_be_added() -> None:
    product = make_product(stock=5)
    set_product_active(product_id=product.id, active=False)
    client = api_client(make_user())
    response = client.post_json(CART, {"productId": product.id, "quantity": 1})
    assert response.status_code == 400
    assert _error(response)["code"] == "product_unavailable"


def test_defect_5_the_summary_is_a_summary() -> None:
    """The original returned the stored document. Fuller: tests/cart/test_cart_api.py, test_cart_services.py."""
    one, two = make_product(price="12.50"), make_product(price="0.10")
    client = api_client(make_user())
    client.post_json(CART, {"productId": one.id, "quantity": 2})
    client.post_json(CART, {"productId": two.id, "quantity": 3})
    body = client.get(CART).json()
    assert (body["itemCount"], body["lineCount"], body["subtotal"], body["currency"]) == (5, 2, "25.30", "USD")
    first = body["lines"][0]
    assert (first["unitPrice"], first["lineTotal"], first["priceChanged"], first["available"]) == (
        "12.50",
        "25.00",
        False,
        True,
    )


@pytest.mark.parametrize("path", ["/api/seed", "/api/seed/", "/seed", "/api/products/seed"])
def test_defect_6_seed_is_not_an_http_endpoint(path: str, product: Product) -> None:
    """Seeding is `manage.py seed` (tests/catalog/test_catalog.py); no request, GET or otherwise, writes data."""
    before = catalog_selectors.count_products()
    version = catalog_selectors.catalog_version()
    client = Client()
    for method in ("GET", "POST", "PUT", "DELETE"):
        for body, content_type in ((b"", "application/octet-stream"), (b"{}", "application/json")):
            response = client.generic(method, path, data=body, content_type=content_type)
            assert response.status_code in (404, 405), (method, path, response.status_code)
    assert catalog_selectors.count_products() == before
    assert catalog_selectors.catalog_version() == version  # no product was written
    assert not [p for p in Client().get("/api/openapi.json").json()["paths"] if "seed" in p]


def test_defect_7_an_email_is_one_exact_case_insensitive_key() -> None:
    """The original looked emails up as analysed text (match_phrase): a different address could match.
    More in tests/accounts/test_accounts_api.py and test_accounts_pages.py."""
    client = ApiClient()
    email = f"Ann.{unique()}@Example.COM"
    assert client.post_json("/api/register", {"name": "Ann", "email": email, "password": PASSWORD}).status_code == 201
    assert client.log_in(email.lower(), PASSWORD).status_code == 200
    again = client.post_json("/api/register", {"name": "Ann", "email": email.upper(), "password": PASSWORD})
    assert again.status_code == 409
    local = email.lower().split("@")[0]
    # Phrases a text search would have matched: other addresses, refused.
    for near in (f"{local}@example.co", f"x{local}@example.com", local.replace(".", " ") + "@example.com"):
        response = client.log_in(near, PASSWORD)
        assert response.status_code in (400, 401), near


def test_defect_8_pages_admin_logout_search_and_health_checks_exist(product: Product) -> None:
    """Every feature the original lacked answers (the whole suite exercises them)."""
    client = Client()
    assert client.get("/").status_code == 200
    assert client.get("/search", {"q": "test"}).status_code == 200
    assert client.get(f"/products/{product.id}").status_code == 200
    assert client.get("/cart/").status_code == 200
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/docs").status_code == 200
    assert client.generic("POST", "/api/logout").status_code == 401  # exists, and wants a token
    assert client.get("/accounts/logout/").status_code == 405  # log-out is a POST


# -- hostile text is escaped wherever it is shown ---------------------------------------------------------


def _assert_escaped(html: str, where: str, text: str = HOSTILE) -> None:
    assert text not in html, f"raw markup on {where}"
    assert "<script>alert(" not in html, f"a script tag on {where}"
    assert "<img src=x" not in html, f"an img tag on {where}"
    assert escape(text) in html, f"the text is not shown (escaped) on {where}"


def test_hostile_product_text_from_the_staff_pages_is_escaped_everywhere(staff: User) -> None:
    """Also tests/catalog/test_catalog.py::test_hostile_text_is_escaped (detail page, search box)."""
    admin = Client()
    admin.force_login(staff)
    sku = unique("XSS-")
    response = admin.post(
        "/admin/catalog/products/add/",
        {
            "sku": sku,
            "name": HOSTILE,
            "description": HOSTILE,
            "category": "Hostile",
            "price": "3.00",
            "currency": "USD",
            "stock": 5,
            "image_url": 'https://img.example.com/a.png?"onerror="alert(1)',
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    product_id = sku.lower()

    shopper = Client()
    shopper.force_login(make_user(name="Shopper"))
    added = shopper.post("/cart/add", {"product_id": product_id, "quantity": "1"}, follow=True)
    pages = {
        "the product list": Client().get("/", {"category": "Hostile"}),
        "the search page": Client().get("/search", {"q": sku}),
        "the product page": Client().get(f"/products/{product_id}"),
        "the add-to-cart message": added,
        "the cart page": shopper.get("/cart/"),
        "the staff product list": admin.get("/admin/catalog/products/", {"q": sku}),
        "the staff product form": admin.get(f"/admin/catalog/products/{product_id}/change/"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        _assert_escaped(page.content.decode(), where)
    hostile_src = 'src="https://img.example.com/a.png?&quot;onerror=&quot;alert(1)"'
    assert hostile_src in pages["the product page"].content.decode()
    assert Client().get(f"/api/products/{product_id}").json()["name"] == HOSTILE  # JSON keeps the text as is


def test_a_hostile_display_name_from_sign_up_is_escaped_in_the_header(product: Product) -> None:
    browser = Client()
    response = browser.post(
        "/accounts/signup/",
        {"name": HOSTILE[:150], "email": f"{unique('x')}@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    for path in ("/", f"/products/{product.id}", "/cart/", "/accounts/password/", "/search?q=a"):
        page = browser.get(path)
        assert page.status_code == 200, path
        _assert_escaped(page.content.decode(), f"the header of {path}")


def test_a_hostile_email_address_is_escaped(staff: User) -> None:
    """A quoted local part may hold almost anything and still be a valid address (RFC 5322)."""
    email = f'"<script>alert(1)</script>{unique()}"@example.com'
    response = ApiClient().post_json("/api/register", {"name": "Quoted", "email": email, "password": PASSWORD})
    assert response.status_code == 201, response.content
    admin = Client()
    admin.force_login(staff)
    user = User.objects.get(email=email.lower())
    for where, page in {
        "the admin user list": admin.get("/admin/accounts/user/", {"q": "Quoted"}),
        "the admin user form": admin.get(f"/admin/accounts/user/{user.pk}/change/"),
    }.items():
        assert page.status_code == 200
        _assert_escaped(page.content.decode(), where, text=email.lower())
    # Echoed back into the forms when a log-in or sign-up fails.
    login = Client().post("/accounts/login/", {"email": email, "password": "wrong-password"})
    _assert_escaped(login.content.decode(), "the log-in form", text=email)
    signup = Client().post("/accounts/signup/", {"name": HOSTILE, "email": email, "password1": "a", "password2": "b"})
    _assert_escaped(signup.content.decode(), "the sign-up form", text=email)
    _assert_escaped(signup.content.decode(), "the sign-up form")


@pytest.mark.parametrize("path", ["/", "/search", "/admin/catalog/products/"])
def test_hostile_search_terms_are_escaped(path: str, staff: User) -> None:
    client = Client()
    client.force_login(staff)
    page = client.get(path, {"q": HOSTILE})
    assert page.status_code == 200
    _assert_escaped(page.content.decode(), path)


# -- CSRF on every form -----------------------------------------------------------------------------------

FORM = re.compile(r"<form\b[^>]*>", re.IGNORECASE)


def _post_form_targets(html: str, page: str) -> set[str]:
    """The action of every POST form on a page (an empty action posts to the page itself)."""
    targets = set()
    for tag in FORM.findall(html):
        if not re.search(r'method\s*=\s*"post"', tag, re.IGNORECASE):
            continue
        action = re.search(r'action\s*=\s*"([^"]*)"', tag)
        target = action.group(1) if action and action.group(1) else page
        targets.add(target.split("?")[0])
    return targets


def _normalise(path: str) -> str:
    """One name per form whatever the object: /admin/catalog/products/<product>/change/ and so on."""
    path = re.sub(r"^/admin/catalog/products/(?!add/)[^/]+/", "/admin/catalog/products/<product>/", path)
    return re.sub(r"^/admin/accounts/user/\d+/", "/admin/accounts/user/<user>/", path)


# Every POST form, with a body that would be accepted with the token (so the 403 is the token's doing).
CSRF_CASES: dict[str, dict[str, str]] = {
    "/accounts/signup/": {"name": "N", "email": "csrf@example.com", "password1": PASSWORD, "password2": PASSWORD},
    "/accounts/login/": {"email": "EMAIL", "password": USER_PASSWORD},
    "/accounts/logout/": {},
    "/accounts/password/": {
        "old_password": USER_PASSWORD,
        "new_password1": "x" + PASSWORD,
        "new_password2": "x" + PASSWORD,
    },
    "/cart/add": {"product_id": "PRODUCT", "quantity": "1"},
    "/cart/update": {"product_id": "PRODUCT", "quantity": "2"},
    "/cart/remove": {"product_id": "PRODUCT"},
    "/cart/clear": {},
    "/admin/login/": {"username": "STAFF", "password": PASSWORD},
    "/admin/logout/": {},
    "/admin/password_change/": {
        "old_password": PASSWORD,
        "new_password1": "y" + PASSWORD,
        "new_password2": "y" + PASSWORD,
    },
    "/admin/catalog/products/add/": {
        "sku": "CSRF-1",
        "name": "N",
        "category": "C",
        "price": "1.00",
        "currency": "USD",
        "stock": "1",
    },
    "/admin/catalog/products/<product>/change/": {"name": "Changed"},
    "/admin/catalog/products/<product>/active/": {"active": "0"},
    "/admin/accounts/user/": {"action": "delete_selected", "_selected_action": "USER"},
    "/admin/accounts/user/add/": {"email": "csrf2@example.com", "name": "N", "usable_password": "false"},
    "/admin/accounts/user/<user>/change/": {"email": "EMAIL", "name": "Changed"},
    "/admin/accounts/user/<user>/password/": {"password1": "z" + PASSWORD, "password2": "z" + PASSWORD},
    "/admin/accounts/user/<user>/delete/": {"post": "yes"},
    "/admin/auth/group/": {"action": "delete_selected", "_selected_action": "1"},
    "/admin/auth/group/add/": {"name": "CSRF group"},
}


def test_every_post_form_of_the_site_has_a_csrf_case(staff: User, product: Product) -> None:
    """Walks the pages a shopper and the staff see and collects every POST form: each must be in
    CSRF_CASES, so a form added later without a CSRF test fails here."""
    shopper = make_user()
    user_client, staff_client, anonymous = Client(), Client(), Client()
    user_client.force_login(shopper)
    staff_client.force_login(staff)
    user_client.post("/cart/add", {"product_id": product.id, "quantity": "1"})
    visits = [
        (
            anonymous,
            ["/", f"/products/{product.id}", "/cart/", "/accounts/login/", "/accounts/signup/", "/admin/login/"],
        ),
        (user_client, ["/", f"/products/{product.id}", "/cart/", "/cart/clear", "/accounts/password/"]),
        (
            staff_client,
            [
                "/admin/",
                "/admin/catalog/products/",
                "/admin/catalog/products/add/",
                f"/admin/catalog/products/{product.id}/change/",
                f"/admin/catalog/products/{product.id}/deactivate/",
                "/admin/accounts/user/",
                "/admin/accounts/user/add/",
                f"/admin/accounts/user/{shopper.pk}/change/",
                f"/admin/accounts/user/{shopper.pk}/password/",
                f"/admin/accounts/user/{shopper.pk}/delete/",
                "/admin/password_change/",
                "/admin/auth/group/",
                "/admin/auth/group/add/",
            ],
        ),
    ]
    found: dict[str, str] = {}
    for client, pages in visits:
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, page
            for target in _post_form_targets(response.content.decode(), page):
                found.setdefault(_normalise(target), page)
    assert {"/accounts/logout/", "/cart/add", "/cart/update", "/cart/remove", "/cart/clear"} <= set(found)
    missing = {target: page for target, page in found.items() if target not in CSRF_CASES}
    assert missing == {}, f"POST forms without a CSRF case (target: page): {missing}"


@pytest.mark.parametrize("target", list(CSRF_CASES))
def test_a_post_without_the_csrf_token_is_refused(target: str, staff: User, product: Product) -> None:
    user = make_user()
    client = Client(enforce_csrf_checks=True)
    if target.startswith("/admin/") and target not in ("/admin/login/",):
        client.force_login(staff)
    elif target not in ("/accounts/signup/", "/accounts/login/", "/admin/login/"):
        client.force_login(user)
    cart_services.add_item(cart_id=f"user-{user.pk}", product_id=product.id, quantity=1)
    client.get(f"/products/{product.id}")  # the CSRF cookie, as a browser would hold it
    assert "csrftoken" in client.cookies
    replace = {"PRODUCT": product.id, "EMAIL": user.email, "USER": str(user.pk), "STAFF": staff.email}
    data = {key: replace.get(value, value) for key, value in CSRF_CASES[target].items()}
    path = target.replace("<product>", product.id).replace("<user>", str(user.pk))

    for token in (None, "a" * 64):  # no token; a made-up token
        body = dict(data) if token is None else {**data, "csrfmiddlewaretoken": token}
        response = client.post(path, body)
        assert response.status_code == 403, (path, token, response.status_code)
        assert b"CSRF" in response.content

    # Nothing happened.
    assert User.objects.filter(pk=user.pk, name=user.name, is_active=True).exists()
    assert User.objects.get(pk=user.pk).check_password(USER_PASSWORD)
    assert User.objects.get(pk=staff.pk).check_password(PASSWORD)
    assert cart_selectors.get_cart(cart_id=f"user-{user.pk}").lines[0].quantity == 1
    assert catalog_selectors.get_product(product_id=product.id, use_cache=False).name == product.name
    assert not User.objects.filter(email__in=["csrf@example.com", "csrf2@example.com"]).exists()


def test_a_form_from_before_a_log_in_in_another_tab_gets_the_shops_own_page(product: Product) -> None:
    """Open a product in one tab, log in in another (which rotates the CSRF token), add to cart in the first."""
    user = make_user()
    shopper = Client(enforce_csrf_checks=True)
    product_page = f"/products/{product.id}"
    stale = CSRF_INPUT.search(shopper.get(product_page).content.decode())
    assert stale
    login_token = CSRF_INPUT.search(shopper.get("/accounts/login/").content.decode())
    assert login_token
    logged_in = shopper.post(
        "/accounts/login/",
        {"email": user.email, "password": USER_PASSWORD, "csrfmiddlewaretoken": login_token.group(1)},
    )
    assert logged_in.status_code == 302

    response = shopper.post(
        "/cart/add",
        {"product_id": product.id, "quantity": "1", "csrfmiddlewaretoken": stale.group(1)},
        HTTP_REFERER=f"http://testserver{product_page}",
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "site.css" in page  # the shop's own layout, not Django's bare page
    assert "Please try again" in page
    assert "logged in or out in another tab" in page
    assert "Nothing was changed" in page
    assert f'<a href="http://testserver{product_page}">Go back and try again</a>' in page
    assert not cart_selectors.get_cart(cart_id=f"user-{user.pk}").lines
    # Going back brings a fresh form, which works.
    fresh = CSRF_INPUT.search(shopper.get(product_page).content.decode())
    assert fresh
    added = shopper.post(
        "/cart/add", {"product_id": product.id, "quantity": "1", "csrfmiddlewaretoken": fresh.group(1)}
    )
    assert added.status_code == 302
    assert cart_selectors.get_cart(cart_id=f"user-{user.pk}").lines[0].quantity == 1


def test_a_csrf_failure_links_back_only_to_this_site_and_says_when_cookies_are_missing() -> None:
    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"email": "a@example.com", "password": "x"}, HTTP_REFERER="https://evil.example/x"
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert '<a href="/">Go back and try again</a>' in page
    assert "allow cookies" in page
    as_json = Client(enforce_csrf_checks=True).post("/cart/add", {}, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 403
    assert _error(as_json)["code"] == "csrf_failed"


def test_the_csrf_cases_succeed_with_the_token(staff: User, product: Product) -> None:
    """The control for the test above: with the page's own token the same POSTs get through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    token = CSRF_INPUT.search(client.get("/admin/catalog/products/add/").content.decode())
    assert token
    response = client.post(
        "/admin/catalog/products/add/",
        {**CSRF_CASES["/admin/catalog/products/add/"], "csrfmiddlewaretoken": token.group(1)},
    )
    assert response.status_code == 302
    shopper = Client(enforce_csrf_checks=True)
    shopper.force_login(make_user())
    token = CSRF_INPUT.search(shopper.get(f"/products/{product.id}").content.decode())
    assert token
    added = shopper.post(
        "/cart/add", {"product_id": product.id, "quantity": "1", "csrfmiddlewaretoken": token.group(1)}
    )
    assert added.status_code == 302


# -- oversized and non-JSON bodies --------------------------------------------------------------------------


def test_an_oversized_api_body_is_refused_with_413_in_the_error_shape(product: Product) -> None:
    client = api_client(make_user())
    ten_mb = json.dumps({"productId": product.id, "quantity": 1, "padding": "x" * 10_000_000})
    response = client.post(CART, data=ten_mb, content_type="application/json")
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"
    assert client.get(CART).json()["lines"] == []
    register = Client().post("/api/register", data=json.dumps({"name": "x" * 300_000}), content_type="application/json")
    assert register.status_code == 413
    assert _error(register)["code"] == "payload_too_large"


def test_a_body_just_under_the_limit_is_read(product: Product) -> None:
    client = api_client(make_user())
    body = json.dumps({"productId": product.id, "quantity": 1, "note": "x" * (settings.REQUEST_BODY_LIMIT - 200)})
    response = client.post(CART, data=body, content_type="application/json")
    assert response.status_code == 200  # unknown fields are ignored; the size is fine


def test_an_oversized_form_is_refused_with_a_413_page() -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    for path in ("/accounts/login/", "/cart/add", "/accounts/signup/"):
        response = client.post(path, {"email": "a@example.com", "password": "x" * 300_000})
        assert response.status_code == 413, path  # before the CSRF check: the body is never parsed
        assert response["Content-Type"].startswith("text/html")
        assert "Request too large" in response.content.decode()


def test_the_limit_is_a_setting(settings: Any) -> None:
    settings.REQUEST_BODY_LIMIT = 1000
    response = Client().post("/api/login", data=json.dumps({"email": "x" * 2000}), content_type="application/json")
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/csv", ""])
def test_an_api_body_that_is_not_json_is_refused_with_415(content_type: str, product: Product) -> None:
    client = api_client(make_user())
    body = json.dumps({"productId": product.id, "quantity": 1})
    response = client.generic("POST", CART, data=body, content_type=content_type)
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"
    assert client.get(CART).json()["lines"] == []


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_a_form_body_is_for_post_only_elsewhere_415(content_type: str, product: Product) -> None:
    """POST takes forms as the original's clients send them (tests/shopcart/test_original_clients.py); PATCH is ours."""
    client = api_client(make_user())
    client.post_json(CART, {"productId": product.id, "quantity": 1})
    response = client.generic("PATCH", f"{CART}/items/{product.id}", data="quantity=3", content_type=content_type)
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"
    assert _quantity(client, product.id) == 1


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"])
def test_json_content_types_are_accepted(content_type: str, product: Product) -> None:
    client = api_client(make_user())
    response = client.generic(
        "POST", CART, data=json.dumps({"productId": product.id, "quantity": 1}), content_type=content_type
    )
    assert response.status_code == 200


# -- the admin refuses non-staff ----------------------------------------------------------------------------


def test_the_admin_user_pages_refuse_non_staff() -> None:
    """The staff product pages: tests/catalog/test_catalog.py::test_admin_product_pages_refuse_non_staff."""
    customer = make_user("Customer")
    victim = make_user("Victim")
    anonymous, signed_in = Client(), Client()
    signed_in.force_login(customer)
    pages = [
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/user/add/",
        f"/admin/accounts/user/{victim.pk}/change/",
        f"/admin/accounts/user/{victim.pk}/password/",
        f"/admin/accounts/user/{victim.pk}/delete/",
        "/admin/auth/group/",
        "/admin/password_change/",
    ]
    for client in (anonymous, signed_in):
        for page in pages:
            response = client.get(page)
            assert response.status_code == 302, page
            assert response["Location"].startswith("/admin/login/"), page
        # Writes too: nothing changes.
        client.post(
            f"/admin/accounts/user/{customer.pk}/change/",
            {"email": customer.email, "is_staff": "on", "is_superuser": "on"},
        )
        client.post(f"/admin/accounts/user/{victim.pk}/delete/", {"post": "yes"})
        client.post(
            "/admin/accounts/user/add/", {"email": "intruder@example.com", "name": "I", "usable_password": "false"}
        )
    customer.refresh_from_db()
    assert not customer.is_staff
    assert not customer.is_superuser
    assert User.objects.filter(pk=victim.pk).exists()
    assert not User.objects.filter(email="intruder@example.com").exists()


def test_the_admin_log_in_refuses_a_customer_with_the_right_password() -> None:
    customer = User.objects.create_user(email=f"{unique('c')}@example.com", password=PASSWORD, name="C")
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": customer.email, "password": PASSWORD})
    assert response.status_code == 200  # the form again, with its error
    assert "staff account" in response.content.decode()
    assert client.get("/admin/accounts/user/").status_code == 302


def test_staff_without_permissions_cannot_see_the_users() -> None:
    clerk = User.objects.create_user(
        email=f"{unique('clerk')}@example.com", password=PASSWORD, name="Clerk", is_staff=True
    )
    client = Client()
    client.force_login(clerk)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 403
    assert client.post("/admin/accounts/user/add/", {"email": "x@example.com", "name": "X"}).status_code == 403


# -- malformed input: 4xx in the error shape, never 5xx -----------------------------------------------------

MALFORMED_JSON = [
    b'{"productId": ',
    b"{",
    b"nul",
    b"'single'",
    b"{'productId': 'x'}",
    b"\xff\xfe\x00",
    b"[1, 2",
    b"{}}",
]


@pytest.mark.parametrize("raw", MALFORMED_JSON)
def test_malformed_json_is_a_400(raw: bytes) -> None:
    client = api_client(make_user())
    response = client.generic("POST", CART, data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert _error(response)["code"] in ("bad_request", "invalid")


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"text"', b"42", b"true", b"[{}]"])
def test_json_that_is_not_an_object_is_a_400_with_fields(raw: bytes) -> None:
    response = api_client(make_user()).generic("POST", CART, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid"


UNICODE_IDS = [
    "\u0000",
    "a\u0000b",
    "\ud800",  # a lone surrogate, sent as the JSON escape \ud800
    "\u202eevil",  # right-to-left override
    "🔭",
    "e\u0301",  # combining accent
    "\ufeffkit-0001",  # byte order mark
    "\uff2b\uff29\uff34\uff0d\uff10\uff10\uff10\uff11",  # "KIT-0001" in full-width forms
    " kit-0001 ",
    "kit-0001\n",
    "ß" * 50,
]


@pytest.mark.parametrize("product_id", UNICODE_IDS)
def test_unicode_edge_cases_in_product_ids_are_refused_cleanly(product_id: str) -> None:
    client = api_client(make_user())
    raw = json.dumps({"productId": product_id, "quantity": 1})  # ensure_ascii: \u escapes, surrogates too
    response = client.generic("POST", CART, data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    _error(response)
    # The same ids in URLs.
    for method, path in (("GET", "/api/products/"), ("PATCH", f"{CART}/items/"), ("DELETE", f"{CART}/items/")):
        response = client.generic(
            method, path + _url_quote(product_id), data=b'{"quantity": 1}', content_type="application/json"
        )
        assert 400 <= response.status_code < 500, (method, product_id, response.status_code)
        _error(response)


def _url_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="")


PATH_TRICKS = [
    "..",
    "../kit-0001",
    "..%2Fkit-0001",
    "%2E%2E",
    "%2E%2E%2F%2E%2E%2F_cat",
    "a%20b",
    "%20",
    "_search",
    "_doc",
    "*",
    "kit-0001%2F..%2F..%2F_all",
    "%00",
    "%ff",
    "%C0%AE%C0%AE",
    "x" * 2000,
]


@pytest.mark.parametrize("trick", PATH_TRICKS)
def test_product_ids_with_path_tricks_are_404s(trick: str, product: Product) -> None:
    client = api_client(make_user())
    client.post_json(CART, {"productId": product.id, "quantity": 1})
    for method, prefix in (("GET", "/api/products/"), ("PATCH", f"{CART}/items/"), ("DELETE", f"{CART}/items/")):
        response = client.generic(method, prefix + trick, data=b'{"quantity": 2}', content_type="application/json")
        assert response.status_code == 404, (method, trick, response.status_code, response.content[:200])
        assert _error(response)["code"] in ("not_found", "product_not_found", "line_not_found")
    page = Client().get(f"/products/{trick}")
    assert page.status_code == 404
    assert "Not found" in page.content.decode()
    assert _quantity(client, product.id) == 1  # nothing else was touched


@pytest.mark.parametrize("product_id", ["../kit-0001", "_search", "*", "a/b", "\u0000", "x" * 5000])
def test_the_cart_form_refuses_tricky_product_ids_with_a_message(product_id: str) -> None:
    client = Client()
    response = client.post("/cart/add", {"product_id": product_id, "quantity": "1"}, follow=True)
    assert response.status_code == 200
    assert 'class="message message-error"' in response.content.decode()


@pytest.mark.parametrize("quantity", ["0", "-1", "1.5", "1e3", "abc", "99999999999999999999999", " 1 1", "1\u0000"])
def test_the_cart_form_refuses_bad_quantities_with_a_message(quantity: str, product: Product) -> None:
    client = Client()
    response = client.post("/cart/add", {"product_id": product.id, "quantity": quantity}, follow=True)
    assert response.status_code == 200
    assert 'class="message message-error"' in response.content.decode(), quantity


@pytest.mark.parametrize(
    "body",
    [
        {"name": "N" * 10_000, "email": "long@example.com", "password": PASSWORD},
        {"name": "N", "email": "a" * 10_000 + "@example.com", "password": PASSWORD},
        {"name": "N", "email": "long2@example.com", "password": "p" * 10_000},
        {"name": "\u0000", "email": "nul@example.com", "password": PASSWORD},
        {"name": "N", "email": "nul\u0000@example.com", "password": PASSWORD},
        {"name": "N", "email": "\ud800@example.com", "password": PASSWORD},
        {"name": ["N"], "email": {"a": 1}, "password": 7},
    ],
)
def test_very_long_and_odd_registration_fields_never_500(body: dict[str, Any]) -> None:
    response = Client().post("/api/register", data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        _error(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/login", {"email": "nul\u0000@example.com", "password": PASSWORD}),
        ("/api/register", {"name": "N", "email": "nul\u0000@example.com", "password": PASSWORD}),
        ("/api/register", {"name": "N\u0000", "email": "nul@example.com", "password": PASSWORD}),
    ],
)
def test_a_nul_character_in_any_api_text_is_a_field_error(path: str, body: dict[str, Any]) -> None:
    """PostgreSQL cannot store or compare text with NUL: every API body is checked once, before any query."""
    response = Client().post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    field = next(name for name, value in body.items() if "\u0000" in value)
    assert "NUL character" in _error(response)["fields"][field][0]


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=0",
        "page=-5",
        "page=99999999999999999999",
        "page_size=100000",
        "page_size=1.5",
        "sort=..%2F..%2Fetc",
        "sort=price%3B%20DROP%20TABLE",
        "category=%00",
        "q=" + "x" * 5000,
        "q=%ED%A0%80",  # a surrogate, encoded: not UTF-8
        "q=%FF%FE",
        "q=%7B%22match_all%22%3A%20%7B%7D%7D",  # {"match_all": {}}
        "q=name%3A*%20OR%20_id%3A*",
        "q=" + "%F0%9F%94%AD" * 300,  # 300 telescopes
        "q=a&q=b&page=1&page=2",
    ],
)
def test_odd_search_parameters_are_4xx_or_ignored_never_500(query: str) -> None:
    api = Client().get(f"/api/products?{query}")
    assert api.status_code in (200, 400, 404), api.content[:300]
    if api.status_code != 200:
        assert _error(api)["code"] == {400: "invalid", 404: "unknown_category"}[api.status_code]
    page = Client().get(f"/search?{query}")
    # The page falls back to its defaults for a bad parameter; a page past the end goes to the last one;
    # a category no product has is a 404 (listing the real ones), on the page as in the API.
    if query.startswith("category"):
        assert page.status_code == api.status_code == 404
    else:
        assert page.status_code == 200 or (page.status_code == 302 and page["Location"].startswith("/search?"))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer " + "a" * 10_000,
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "bearer\u00a0x",
        "Bearer \x7f",
    ],
)
def test_odd_authorization_headers_are_401(header: str) -> None:
    response = Client(HTTP_AUTHORIZATION=header).get(CART)
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"


def test_a_set_quantity_with_bad_bodies_is_400(product: Product) -> None:
    client = api_client(make_user())
    client.post_json(CART, {"productId": product.id, "quantity": 1})
    for body in ({}, {"quantity": -3}, {"quantity": 2.5}, {"quantity": "3"}, {"quantity": 10**40}):
        response = client.patch_json(f"{CART}/items/{product.id}", body)
        assert response.status_code == 400, body
        assert "quantity" in _error(response)["fields"]
    assert _quantity(client, product.id) == 1


# -- methods: a wrong one is a JSON 405 under /api/, and HEAD answers wherever GET does ----------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/register", {"POST"}),
        ("GET", "/api/login", {"POST"}),
        ("PUT", CART, {"GET", "HEAD", "POST", "DELETE"}),
        ("PATCH", CART, {"GET", "HEAD", "POST", "DELETE"}),
        ("POST", "/api/products", {"GET", "HEAD"}),
        ("PUT", "/api/me", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("PUT", "/api/logout", {"POST"}),
    ],
)
def test_a_wrong_method_on_the_api_is_a_json_405_naming_the_allowed_ones(method: str, path: str, allowed: set) -> None:
    response = api_client(make_user()).generic(method, path, data=b"{}", content_type="application/json")
    assert response.status_code == 405, response.content
    error = _error(response)
    assert error["code"] == "method_not_allowed"
    assert method in error["message"]
    assert {name.strip() for name in response["Allow"].split(",")} == allowed


def test_head_answers_like_get_on_pages_and_api_routes(product: Product) -> None:
    client = api_client(make_user())
    paths = [
        "/",
        "/search?q=telescope",
        f"/products/{product.id}",
        "/cart/",
        "/accounts/login/",
        "/healthz",
        "/readyz",
        "/api/products",
        f"/api/products/{product.id}",
        "/api/me",
        CART,
        "/api/openapi.json",
        "/api/docs",
    ]
    for path in paths:
        get, head = client.get(path), client.head(path)
        assert get.status_code == 200, (path, get.status_code)
        assert head.status_code == 200, (path, head.status_code)
        assert head["Content-Type"] == get["Content-Type"], path
        assert head.content == b"", path
    # A HEAD for something missing is the same 404 a GET gets.
    assert client.head("/api/products/no-such-product").status_code == 404
    assert Client().head("/api/me").status_code == 401


# -- text that is not text: unpaired surrogates and bytes that are not UTF-8, refused naming the field ------

NOT_TEXT = [
    ("/api/register", {"name": "a\ud800b", "email": "s1@example.com", "password": PASSWORD}, "name"),
    ("/api/register", {"name": "Sam", "email": "s2@example.com", "password": "\ud800"}, "password"),
    ("/api/register", {"name": "Sam", "email": "s3@example.com", "password": "plum\udfff-orchard-91"}, "password"),
    ("/api/login", {"email": "s4@example.com", "password": "\ud800"}, "password"),
    ("/api/login", {"email": "s5\udc00@example.com", "password": PASSWORD}, "email"),
    (CART, {"productId": "kit\ud800", "quantity": 1}, "productId"),
]


@pytest.mark.parametrize(("path", "body", "field"), NOT_TEXT)
def test_unpaired_surrogates_in_a_json_body_are_a_400_naming_the_field(path: str, body: dict, field: str) -> None:
    raw = json.dumps(body)  # ensure_ascii: the surrogate travels as the escape \ud800, as a client sends it
    response = api_client(make_user()).generic("POST", path, data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    error = _error(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert not User.objects.filter(email__startswith="s").exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/accounts/signup/", "name=a%ED%A0%80b&email=p1%40example.com&password1=x&password2=x", "name"),
        ("/accounts/login/", "email=p2%40example.com&password=%ED%A0%80", "password"),
        ("/accounts/login/", "email=p3%40example.com&password=%FF%FE", "password"),
        ("/cart/add", "product_id=kit%ED%B0%80&quantity=1", "product_id"),
        ("/api/register", "name=a%ED%A0%80b&email=p4%40example.com&password=plum-orchard-91", "name"),
    ],
)
def test_a_form_field_that_is_not_utf8_is_a_400_naming_the_field(path: str, body: str, field: str) -> None:
    response = Client().generic("POST", path, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, (path, response.status_code)
    if path.startswith("/api/"):
        assert list(_error(response)["fields"]) == [field]
    else:
        assert response["Content-Type"].startswith("text/html")
        assert field in response.content.decode()
    assert not User.objects.filter(email__startswith="p").exists()
