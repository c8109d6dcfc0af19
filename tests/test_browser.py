"""End-to-end flows in a real headless Chromium (Debian's package, driven by Playwright) against a
live server on the real services. Screenshots of the main pages go to test-artifacts/screenshots/.

No JavaScript is needed by the pages; the browser proves that forms, redirects, cookies, CSRF and
messages work as a person sees them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from catalog import selectors

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The flags this machine's closed network needs (no background traffic, no sandbox as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "Quiet-Harbor-2931"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.exit(
            f"Chromium not found at {CHROMIUM}. Install it with: bash devstack/stack.sh ensure-package chromium"
        )
    # Playwright's sync API runs an event loop in this thread; the Django calls made around it
    # (fixtures, assertions on the database) are synchronous and safe here.
    # Set for this module only: it must not leak into other tests' subprocesses (check --deploy).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield instance
            instance.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def shop(live_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The live server with the demo catalog in an index prefix of its own."""
    prefix = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-e2e{uuid.uuid4().hex[:6]}"
    with override_settings(ELASTICSEARCH_INDEX_PREFIX=prefix):
        call_command("seed", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
        yield live_server.url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_up(page: Page, base: str, *, name: str, email: str) -> None:
    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign up", re.I)).click()


def log_in(page: Page, base: str, *, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name=re.compile("log in", re.I)).click()


def log_out(page: Page) -> None:
    page.locator("header").get_by_role("button", name="Log out").click()


def add_to_cart(page: Page, product_id: str, quantity: int = 1) -> None:
    form = page.locator(f"form.add-to-cart:has(input[name=product_id][value='{product_id}'])").first
    form.locator("input[name=quantity]").fill(str(quantity))
    form.get_by_role("button", name="Add to cart").click()


def mini_cart_count(page: Page) -> int:
    return int(page.locator("#mini-cart-count").inner_text())


def subtotal(page: Page) -> Decimal:
    return Decimal(page.locator("#cart-subtotal").inner_text().split()[0])


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
    expect(page.locator(".messages")).to_contain_text("to 3")
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
