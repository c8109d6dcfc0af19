"""/api/docs in a real headless Chromium with every request off this server refused: Swagger UI and
its assets come from the shop itself (static files), so the docs work offline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def offline_page(browser: Browser, live_server) -> Iterator[tuple[Page, list[str]]]:  # type: ignore[no-untyped-def]
    """A tab that can reach the live server only; every other address is refused and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
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
