"""Issue 17 in Chromium, each test at 1280 px and at 360 px (`screen_tab`), with the Content-Security-Policy
on (any violation fails the test, tests/browser/conftest.py) and axe-core at 0 serious or critical:

* long unbroken text (a 60-letter name, a 120-letter product name, a 60-letter category, a 64-character
  SKU, a 200-letter search) never makes a page wider than the screen (item 1);
* a staff image address that fails to load falls back to the generated picture (item 2);
* error pages keep the shop's header (item 3);
* every link is at least 24 px tall, navigation and form actions 44 px (item 7);
* the description's limit is counted as the staff member types, and a too long one is not sent; without
  JavaScript the server answers with the form and a field error, the text kept (item 8);
* "Empty the cart" and "Deactivate" ask first, with and without JavaScript; deactivating from a
  search returns to it (item 10);
* an inline script injected into a page does not run (item 14).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from accounts.services import NAME_MAX_LENGTH
from catalog import services as catalog_services
from catalog.models import CATEGORY_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, SKU_MAX_LENGTH
from catalog.models import NAME_MAX_LENGTH as PRODUCT_NAME_MAX
from catalog.selectors import Product
from catalog.services import ProductInput
from tests.support import unique
from tests.support.browser import PASSWORD, SCREENS, axe_violations, log_in, page_problems, page_width, watch_csp

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BROKEN_IMAGE = "https://example.invalid/nope.png"


def screen_of(tab: Page) -> str:
    return "phone" if tab.viewport_size and tab.viewport_size["width"] < 600 else "desktop"


def staff_user() -> str:
    email = f"{unique('staff-')}@example.com"
    get_user_model().objects.create_user(
        email=email, password=PASSWORD, name="S" * NAME_MAX_LENGTH, is_staff=True, is_superuser=True
    )
    return email


def long_product(**overrides: object) -> Product:
    """A product whose every text is one word as long as the form allows."""
    fields: dict[str, object] = {
        "sku": ("L" + unique()).upper().ljust(SKU_MAX_LENGTH, "K"),
        "name": "N" * PRODUCT_NAME_MAX,
        "description": "D" * DESCRIPTION_MAX_LENGTH,
        "category": "C" * CATEGORY_MAX_LENGTH,
        "price": Decimal("999999.99"),
        "currency": "USD",
        "stock": 50,
        **overrides,
    }
    return catalog_services.create_product(data=ProductInput(**fields))  # type: ignore[arg-type]


def add_to_cart(tab: Page, product_id: str, quantity: int = 1) -> None:
    form = tab.locator(f"form.add-to-cart:has(input[name=product_id][value='{product_id}'])").first
    form.locator("input[name=quantity]").fill(str(quantity))
    form.get_by_role("button", name=re.compile("Add to cart")).click()
    expect(tab.locator(".messages")).to_contain_text("Added")


def test_long_unbroken_text_never_widens_a_page(shop: str, screen_tab: Page) -> None:
    tab = screen_tab
    product = long_product()
    email = staff_user()
    log_in(tab, shop, email=email)
    expect(tab.locator("header")).to_contain_text("S" * 10)
    tab.goto(f"{shop}/products/{product.id}")
    add_to_cart(tab, product.id)
    pages = [
        "/",
        f"/?category={product.category}",
        f"/search?q={'q' * 200}",
        f"/search?q={'n' * PRODUCT_NAME_MAX}",
        f"/products/{product.id}",
        "/cart/",
        "/cart/clear",
        "/nope",
        "/?category=" + "Z" * 60,
        "/accounts/password/",
        "/admin/",
        "/admin/catalog/products/?q=" + "n" * PRODUCT_NAME_MAX,
        f"/admin/catalog/products/{product.id}/change/",
        f"/admin/catalog/products/{product.id}/deactivate/",
    ]
    widths, problems = {}, {}
    for path in pages:
        tab.goto(f"{shop}{path}")
        widths[path] = page_width(tab)
        found = axe_violations(tab)
        if found:
            problems[path] = found
    window = tab.viewport_size["width"] if tab.viewport_size else 0
    assert {path: width for path, width in widths.items() if width > window} == {}
    assert problems == {}
    # The header cuts the name with an ellipsis; the whole name is still there for a screen reader.
    tab.goto(f"{shop}/")
    name = tab.locator("#account-link")
    assert name.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    assert "S" * NAME_MAX_LENGTH in (name.text_content() or "")
    tab.screenshot(path=f"test-artifacts/screenshots/long-text-{screen_of(tab)}.png", full_page=True)


def test_a_broken_staff_image_falls_back_to_the_generated_picture(shop: str, screen_tab: Page) -> None:
    tab = screen_tab
    product = long_product(name="Broken Picture Lamp", category="Lighting", image_url=BROKEN_IMAGE)
    tab.route(f"{BROKEN_IMAGE}*", lambda route: route.abort("namenotresolved"))
    tab.goto(f"{shop}/products/{product.id}")
    add_to_cart(tab, product.id)
    for path in (f"/products/{product.id}", "/?category=Lighting", "/cart/"):
        tab.goto(f"{shop}{path}")
        picture = tab.locator(f"img.product-image[alt='{product.name}']").first
        picture.scroll_into_view_if_needed()
        tab.wait_for_function(
            "alt => [...document.images].filter(i => i.alt === alt).every(i => i.complete && i.naturalWidth > 0)",
            arg=product.name,
        )
        assert "generated=1" in picture.evaluate("e => e.currentSrc"), path


def test_error_pages_keep_the_shops_header(shop: str, screen_tab: Page) -> None:
    tab = screen_tab
    withdrawn = long_product(name="Withdrawn Compass", category="Outdoor")
    catalog_services.set_product_active(product_id=withdrawn.id, active=False)
    problems = {}
    for path, heading in (
        ("/nope", "Not found"),
        ("/products/nope", "Not found"),
        (f"/products/{withdrawn.id}", "No longer available"),
        ("/?category=Nope", "No such category"),
    ):
        tab.goto(f"{shop}{path}")
        expect(tab.locator("h1")).to_have_text(heading)
        header = tab.locator("header")
        expect(header.get_by_label("Search products")).to_be_visible()  # a combobox once its script runs
        expect(header.get_by_role("link", name=re.compile("^Cart"))).to_be_visible()
        expect(header.get_by_role("link", name="Log in")).to_be_visible()
        found = page_problems(tab)
        if found:
            problems[path] = found
    tab.goto(f"{shop}/products/{withdrawn.id}")
    expect(tab.locator("main")).to_contain_text("“Withdrawn Compass” is no longer sold in this shop.")
    tab.goto(f"{shop}/?category=nope")
    expect(tab.locator("main").get_by_role("link", name="Kitchen")).to_be_visible()
    assert problems == {}


def test_every_link_is_big_enough_to_press(shop: str, screen_tab: Page) -> None:
    """24 px for anything pressed, 44 px for navigation and form actions (page_problems), at both widths."""
    tab = screen_tab
    problems = {}
    for path in ("/", "/products/kit-0001", "/accounts/login/", "/accounts/signup/", "/nope", "/cart/"):
        tab.goto(f"{shop}{path}")
        if path == "/products/kit-0001":
            add_to_cart(tab, "kit-0001")
        found = page_problems(tab)
        if found:
            problems[path] = found
    tab.goto(f"{shop}/cart/clear")
    problems["/cart/clear"] = page_problems(tab)
    assert {path: found for path, found in problems.items() if found} == {}


def test_the_description_limit_is_counted_and_kept_before_sending(shop: str, screen_tab: Page) -> None:
    tab = screen_tab
    log_in(tab, shop, email=staff_user())
    tab.goto(f"{shop}/admin/catalog/products/add/")
    description = tab.locator("textarea[name=description]")
    counter = tab.locator("#id_description_count")
    expect(counter).to_have_text(f"0 of {DESCRIPTION_MAX_LENGTH:,} characters")
    description.fill("word " * 1200)
    expect(counter).to_have_text(f"6,000 of {DESCRIPTION_MAX_LENGTH:,} characters: 1,000 too many")
    assert "id_description_count" in (description.get_attribute("aria-describedby") or "")
    sku = unique("CNT-")
    tab.locator("input[name=sku]").fill(sku)
    tab.locator("input[name=name]").fill("Counted Kettle")
    tab.locator("select[name=category]").select_option("Kitchen")
    tab.locator("input[name=price]").fill("12.50")
    tab.locator("input[name=stock]").fill("3")
    posts: list[str] = []
    tab.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    tab.locator("input[type=submit][value=Save]").click()
    expect(counter).to_have_text(
        f"Use at most {DESCRIPTION_MAX_LENGTH:,} characters; this has 6,000. Nothing was sent."
    )
    expect(description).to_be_focused()
    tab.wait_for_timeout(500)  # a bounded quiet period: proving that the form was not sent
    assert posts == []
    description.fill("word " * 900)  # 4,500 characters
    expect(counter).to_have_text(f"4,500 of {DESCRIPTION_MAX_LENGTH:,} characters")
    tab.locator("input[type=submit][value=Save]").click()
    expect(tab.locator(".messagelist")).to_contain_text("Created “Counted Kettle”")
    assert len(posts) == 1


def test_without_javascript_a_too_long_description_comes_back_in_the_form(shop: str, browser: Browser) -> None:
    for screen in SCREENS:
        context = browser.new_context(java_script_enabled=False, **SCREENS[screen])  # type: ignore[arg-type]
        violations = watch_csp(context)
        tab = context.new_page()
        log_in(tab, shop, email=staff_user())
        tab.goto(f"{shop}/admin/catalog/products/add/")
        huge = "Pasted " * 90_000  # ~630 KB: past the site's usual body limit
        tab.locator("textarea[name=description]").fill(huge)
        tab.locator("input[name=sku]").fill(unique("BIG-"))
        tab.locator("input[name=name]").fill("Pasted Kettle")
        tab.locator("select[name=category]").select_option("Kitchen")
        tab.locator("input[name=price]").fill("12.50")
        tab.locator("input[name=stock]").fill("3")
        tab.locator("input[type=submit][value=Save]").click()
        expect(tab.locator("#id_description_error")).to_contain_text("Use at most 5,000 characters; this has")
        assert tab.locator("input[name=name]").input_value() == "Pasted Kettle"
        assert tab.locator("textarea[name=description]").input_value().strip() == huge.strip()
        assert page_width(tab) <= SCREENS[screen]["viewport"]["width"]  # type: ignore[index]
        context.close()
        assert violations == []


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_emptying_the_cart_and_deactivating_ask_first(shop: str, browser: Browser, javascript: bool) -> None:
    for screen in SCREENS:
        context = browser.new_context(java_script_enabled=javascript, **SCREENS[screen])  # type: ignore[arg-type]
        violations = watch_csp(context)
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        tab.goto(f"{shop}/products/kit-0001")
        add_to_cart(tab, "kit-0001", 2)
        tab.goto(f"{shop}/cart/")
        tab.get_by_role("link", name="Empty the cart…").click()
        expect(tab.locator("h1")).to_have_text("Empty your cart?")
        # axe-core needs JavaScript (its timers never fire without it): it checks the pages in the with-js run.
        assert (page_problems(tab) if javascript else []) == []
        assert page_width(tab) <= SCREENS[screen]["viewport"]["width"]  # type: ignore[index]
        tab.get_by_role("link", name="No, keep my cart").click()
        expect(tab.locator(".cart-line")).to_have_count(1)
        tab.get_by_role("link", name="Empty the cart…").click()
        tab.get_by_role("button", name="Yes, empty the cart").click()
        expect(tab.locator("#cart-empty")).to_be_visible()

        log_in(tab, shop, email=staff_user())
        product = long_product(name=f"Lantern {unique()}", category="Outdoor")
        listing = f"{shop}/admin/catalog/products/?q={product.sku}"
        tab.goto(listing)
        tab.get_by_role("link", name=f"Deactivate {product.name}").click()
        expect(tab.locator("#content-main")).to_contain_text(f"Deactivate “{product.name}”")
        assert (axe_violations(tab) if javascript else []) == []
        assert page_width(tab) <= SCREENS[screen]["viewport"]["width"]  # type: ignore[index]
        tab.get_by_role("link", name="No, go back").click()
        assert tab.url == listing
        tab.get_by_role("link", name=f"Deactivate {product.name}").click()
        tab.get_by_role("button", name="Yes, deactivate it").click()
        assert tab.url == listing  # the same search, not the whole list
        expect(tab.locator(".messagelist")).to_contain_text("is now deactivated")
        expect(tab.get_by_role("button", name=f"Activate {product.name}")).to_be_visible()
        context.close()
        assert violations == []


@pytest.fixture
def unwatched_tab(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A tab whose CSP violations the test itself inspects (it provokes one)."""
    context = browser.new_context()
    violations = watch_csp(context)
    yield context.new_page(), violations
    context.close()


def test_an_injected_inline_script_does_not_run(shop: str, unwatched_tab: tuple[Page, list[str]]) -> None:
    tab, violations = unwatched_tab
    tab.goto(f"{shop}/products/kit-0001")
    tab.evaluate(
        """() => {
        const script = document.createElement('script');
        script.textContent = 'window.injectedRan = true';
        document.body.appendChild(script);
        document.body.insertAdjacentHTML('beforeend', '<img src="/nope.png" onerror="window.handlerRan = true">');
    }"""
    )
    tab.wait_for_function("() => [...document.images].every(i => i.complete)")
    assert tab.evaluate("() => [window.injectedRan === true, window.handlerRan === true]") == [False, False]
    assert any("inline" in violation for violation in violations), violations
