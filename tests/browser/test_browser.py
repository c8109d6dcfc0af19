"""End-to-end flows in a real headless Chromium (Debian's package, driven by Playwright) against a
live server on the real services. Screenshots of the main pages go to test-artifacts/screenshots/.

No JavaScript is needed by the pages; the browser proves that forms, redirects, cookies, CSRF and
messages work as a person sees them.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from catalog import selectors
from tests.support.browser import (
    HEADINGS_JS,
    PASSWORD,
    SCREENSHOTS,
    axe_violations,
    heading_problems,
    log_in,
    page_problems,
    shot,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def sign_up(page: Page, base: str, *, name: str, email: str) -> None:
    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign up", re.I)).click()


def log_out(page: Page) -> None:
    page.locator("header").get_by_role("button", name="Log out").click()


def add_to_cart(page: Page, product_id: str, quantity: int = 1) -> None:
    form = page.locator(f"form.add-to-cart:has(input[name=product_id][value='{product_id}'])").first
    form.locator("input[name=quantity]").fill(str(quantity))
    form.get_by_role("button", name="Add to cart").click()


def mini_cart_count(page: Page) -> int:
    return int(page.locator("#mini-cart-count").inner_text())


def subtotal(page: Page) -> Decimal:
    return Decimal(re.sub(r"[$,]", "", page.locator("#cart-subtotal").inner_text()))  # "$1,234.50"


def test_sign_up_search_shop_and_log_out(shop: str, page: Page) -> None:
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    page.goto(shop)
    shot(page, "product-list")

    sign_up(page, shop, name="Ada Lovelace", email=email)
    expect(page.locator("header")).to_contain_text("Ada Lovelace")
    log_out(page)
    expect(page.locator("header")).to_contain_text("Log in")

    log_in(page, shop, email=email.upper())  # email is case-insensitive
    expect(page.locator("header")).to_contain_text("Ada Lovelace")

    # Search with a typo, then add two products.
    page.locator("header").get_by_placeholder("Search products").fill("telscope")
    page.locator("header").get_by_role("button", name="Search").click()
    expect(page.locator("h1")).to_contain_text("telscope")
    expect(page.locator(".product-card").first).to_contain_text("Telescope")
    shot(page, "search")
    telescope = page.locator(".product-card input[name=product_id]").first.get_attribute("value")
    assert telescope
    add_to_cart(page, telescope, 2)
    expect(page.locator(".messages")).to_contain_text("Added 2")
    assert mini_cart_count(page) == 2

    page.goto(f"{shop}/products/kit-0001")
    shot(page, "product-detail")
    add_to_cart(page, "kit-0001", 1)
    expect(page.locator(".messages")).to_contain_text("Added 1")
    assert mini_cart_count(page) == 3

    # Change a quantity, remove a line, and check the total against the catalog.
    page.goto(f"{shop}/cart/")
    page.locator("#qty-kit-0001").fill("3")
    page.locator("tr[data-product-id='kit-0001']").get_by_role("button", name="Update").click()
    expect(page.locator(".messages")).to_contain_text("You now have 3 of")
    shot(page, "cart")
    page.locator(f"tr[data-product-id='{telescope}']").get_by_role("button", name=re.compile("Remove")).click()
    expect(page.locator(".messages")).to_contain_text("Removed")
    expect(page.locator(".cart-line")).to_have_count(1)

    knife = selectors.get_product(product_id="kit-0001")
    assert subtotal(page) == knife.price * 3
    assert mini_cart_count(page) == 3

    log_out(page)
    expect(page.locator("header")).to_contain_text("Log in")
    page.goto(f"{shop}/cart/")
    expect(page.locator("#cart-empty")).to_be_visible()  # the user's cart is not the anonymous one


def test_anonymous_cart_is_merged_at_login(shop: str, page: Page, django_user_model) -> None:  # type: ignore[no-untyped-def]
    email = f"grace-{uuid.uuid4().hex[:6]}@example.com"
    django_user_model.objects.create_user(email=email, password=PASSWORD, name="Grace Hopper")

    page.goto(f"{shop}/products/out-0058")
    add_to_cart(page, "out-0058", 1)
    expect(page.locator(".messages")).to_contain_text("Added 1")
    assert mini_cart_count(page) == 1

    log_in(page, shop, email=email)
    expect(page.locator("header")).to_contain_text("Grace Hopper")
    page.goto(f"{shop}/cart/")
    expect(page.locator("tr[data-product-id='out-0058']")).to_be_visible()
    assert mini_cart_count(page) == 1


def test_errors_are_shown_to_the_user(shop: str, page: Page, django_user_model) -> None:  # type: ignore[no-untyped-def]
    email = f"linus-{uuid.uuid4().hex[:6]}@example.com"
    django_user_model.objects.create_user(email=email, password=PASSWORD, name="Linus")

    log_in(page, shop, email=email, password="wrong-password")
    expect(page.locator("main")).to_contain_text(re.compile("email|password", re.I))
    shot(page, "login-error")

    sign_up(page, shop, name="Someone Else", email=email.upper())
    expect(page.locator("main")).to_contain_text("already exists")

    # More than the stock: refused with a message, nothing added.
    low_stock = next(p for p in selectors.search_products(page_size=100).items if 0 < p.stock < 50)
    page.goto(f"{shop}/products/{low_stock.id}")
    add_to_cart(page, low_stock.id, low_stock.stock + 1)
    expect(page.locator(".message-error")).to_be_visible()
    shot(page, "cart-refusal")
    assert mini_cart_count(page) == 0

    page.goto(f"{shop}/products/no-such-product")
    expect(page.locator("h1")).to_contain_text("Not found")


# --- phones and accessibility ---------------------------------------------------------------------------


def test_every_page_fits_a_phone_and_passes_axe(shop: str, phone: Page, django_user_model) -> None:  # type: ignore[no-untyped-def]
    problems: dict[str, list[str]] = {}

    def check(name: str, *, touch: bool = True) -> None:
        phone.screenshot(path=str(SCREENSHOTS / f"phone-{re.sub(r'[^a-z]+', '-', name)}.png"))
        found = page_problems(phone, touch=touch)
        if found:
            problems[name] = found

    phone.goto(shop)
    check("product list")
    phone.goto(f"{shop}/search?q=telescope&sort=bogus")
    expect(phone.locator(".search-note")).to_be_visible()
    check("search with a note")
    phone.goto(f"{shop}/products/kit-0001")
    check("product detail")
    add_to_cart(phone, "kit-0001", 2)
    phone.goto(f"{shop}/products/out-0058")
    add_to_cart(phone, "out-0058", 1)
    phone.goto(f"{shop}/cart/")
    expect(phone.locator(".cart-line")).to_have_count(2)
    check("cart")
    phone.goto(f"{shop}/accounts/signup/")
    check("sign up")
    phone.locator("input[name=email]").fill("not-an-address")
    phone.locator("main").get_by_role("button", name="Sign up").click()
    expect(phone.locator("#id_email_error")).to_be_visible()
    check("sign up with errors")
    phone.goto(f"{shop}/accounts/login/")
    check("log in")
    phone.goto(f"{shop}/products/no-such-product")
    check("not found")

    email = f"staff-{uuid.uuid4().hex[:6]}@example.com"
    django_user_model.objects.create_user(
        email=email, password=PASSWORD, name="Sam Staff", is_staff=True, is_superuser=True
    )
    log_in(phone, shop, email=email)
    expect(phone.locator("header")).to_contain_text("Sam Staff")
    phone.goto(f"{shop}/accounts/password/")
    check("password change")
    phone.goto(f"{shop}/cart/")
    check("cart, logged in")
    # The staff pages are Django's admin: they must fit and pass axe; their touch sizes are the admin's own.
    phone.goto(f"{shop}/admin/catalog/products/")
    check("staff product list", touch=False)
    phone.goto(f"{shop}/admin/catalog/products/add/")
    check("staff add product", touch=False)
    phone.locator("input[type=submit][value=Save]").click()
    expect(phone.locator("#id_sku_error")).to_be_visible()
    check("staff add product with errors", touch=False)
    phone.goto(f"{shop}/admin/catalog/products/kit-0001/change/")
    check("staff edit product", touch=False)

    assert problems == {}, "\n".join(f"{name}: {problem}" for name, found in problems.items() for problem in found)


def test_the_skip_link_and_the_add_to_cart_buttons_say_where_and_what(shop: str, page: Page) -> None:
    page.goto(shop)
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Skip to content")
    expect(skip).to_be_in_viewport()
    skip.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"

    names = [button.get_attribute("aria-label") for button in page.locator("form.add-to-cart button").all()]
    assert len(names) > 12  # the in-stock products of the first page
    assert len(set(names)) == len(names), "every Add to cart button names its product"
    first = page.locator(".product-card").first
    product = first.locator("h2").inner_text()
    sku = first.locator("input[name=product_id]").get_attribute("value").upper()
    expect(first.get_by_role("button", name=f"Add to cart: {product} (SKU {sku})", exact=True)).to_be_visible()


def test_warnings_look_like_warnings(shop: str, page: Page) -> None:
    page.goto(f"{shop}/search?q=telescope&sort=bogus")
    note = page.locator(".search-note")
    expect(note).to_have_class(re.compile(r"\bmessage-warning\b"))
    warning = note.evaluate("e => getComputedStyle(e).backgroundColor")
    page.goto(f"{shop}/products/kit-0001")
    add_to_cart(page, "kit-0001", 1)
    success = page.locator(".message-success").evaluate("e => getComputedStyle(e).backgroundColor")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p class=\"message message-info\" id=i>x</p>')")
    info = page.locator("#i").evaluate("e => getComputedStyle(e).backgroundColor")
    assert len({warning, success, info}) == 3, (warning, success, info)


def test_desktop_pages_pass_axe_too(shop: str, page: Page) -> None:
    """The wide layout (the cart as a table, the categories beside the list) has its own markup paths."""
    page.goto(f"{shop}/products/kit-0001")
    add_to_cart(page, "kit-0001", 1)
    problems = {}
    for path in ("/", "/search?q=telescope", "/products/kit-0001", "/cart/", "/accounts/signup/", "/accounts/login/"):
        page.goto(f"{shop}{path}")
        found = axe_violations(page) + heading_problems(page.evaluate(HEADINGS_JS))
        if found:
            problems[path] = found
    assert problems == {}
