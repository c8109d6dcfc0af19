"""/api/docs in a real headless Chromium with every request off this server refused: Swagger UI and
its assets come from the shop itself (static files), so the docs work offline, under the page's own
Content-Security-Policy (no violation)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.support.browser import watch_csp

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def offline_page(browser: Browser, live_server) -> Iterator[tuple[Page, list[str]]]:  # type: ignore[no-untyped-def]
    """A tab that can reach the live server only; every other address is refused and recorded. The test
    fails on any Content-Security-Policy violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    violations = watch_csp(context)
    refused: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_this_server)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab, refused
    context.close()
    assert violations == [], "Content-Security-Policy violations:\n" + "\n".join(violations)


def test_api_docs_render_every_operation_with_no_network(offline_page: tuple[Page, list[str]], live_server) -> None:  # type: ignore[no-untyped-def]
    page, refused = offline_page
    page.goto(f"{live_server.url}/api/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("shopcart API")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    paths = {text.strip() for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert {"/api/register", "/api/login", "/api/products", "/api/user/cart"} <= paths, paths
    assert operations.count() >= 11
    assert refused == [], f"the docs page asked the network for: {refused}"


def test_api_docs_try_an_operation_under_the_policy(offline_page: tuple[Page, list[str]], shop: str) -> None:
    """Swagger UI's own pieces (icons, styles, the call it makes) work within the docs page's policy."""
    page, _ = offline_page
    response = page.goto(f"{shop}/api/docs")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    operation = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/products")).first
    operation.locator(".opblock-summary").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    status = page.locator(".responses-wrapper .live-responses-table tbody .response-col_status").first
    expect(status).to_contain_text("200")
