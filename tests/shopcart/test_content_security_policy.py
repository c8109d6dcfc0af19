"""The Content-Security-Policy (issue 17, item 14): on every response of the site, pages, error pages,
the API and its docs; strict for scripts (only the shop's own files: no inline script, no eval); the
Swagger UI page gets data: images and nothing else; the generated product pictures keep their own,
stricter policy. nginx does not announce its version (here its configs; tests/shopcart/test_scaleout.py
asks a running nginx). In the browser, tests/browser/ fail on any violation and prove an injected script
does not run."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from catalog.selectors import Product
from tests.support import ROOT
from tests.support.cart import make_product

pytestmark = [pytest.mark.django_db]


@pytest.fixture(scope="module")
def product() -> Product:
    return make_product(price="12.50", stock=20)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


# The policy as a browser reads it (directive order does not matter).
SITE_POLICY = directives(
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' http: https:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def test_every_kind_of_response_carries_the_strict_policy(client: Client, product: Product) -> None:
    responses = {
        "list": client.get("/"),
        "search": client.get("/search?q=kettle"),
        "product": client.get(f"/products/{product.id}"),
        "cart": client.get("/cart/"),
        "log in": client.get("/accounts/login/"),
        "not found": client.get("/nope"),
        "missing product": client.get("/products/nope"),
        "too large": client.post("/cart/add", data="x" * 300_000, content_type="application/x-www-form-urlencoded"),
        "csrf failure": Client(enforce_csrf_checks=True).post("/cart/clear", {}),
        "api": client.get("/api/products"),
        "api error": client.get("/api/products/nope"),
        "api method": client.put("/api/products"),
        "admin log-in": client.get("/admin/login/"),
    }
    wrong = {
        name: response.get("Content-Security-Policy")
        for name, response in responses.items()
        if directives(response.get("Content-Security-Policy", "none")) != SITE_POLICY
    }
    assert wrong == {}, wrong


def test_no_inline_script_or_eval_anywhere_and_the_docs_add_only_data_images(client: Client) -> None:
    policy = directives(client.get("/api/docs")["Content-Security-Policy"])
    assert policy == {**SITE_POLICY, "img-src": [*SITE_POLICY["img-src"], "data:"]}
    for sources in (policy["script-src"], SITE_POLICY["script-src"], SITE_POLICY["default-src"]):
        assert not {"'unsafe-inline'", "'unsafe-eval'", "data:", "*"} & set(sources)


def test_a_generated_picture_keeps_its_own_stricter_policy(client: Client, product: Product) -> None:
    response = client.get(f"/products/{product.id}/image")
    assert response["Content-Type"] == "image/svg+xml"
    assert directives(response["Content-Security-Policy"]) == {
        "default-src": ["'none'"],
        "style-src": ["'unsafe-inline'"],
    }


class _InlineCode(HTMLParser):
    """The markup the policy blocks: <script> without src, <style>, style="...", on...="..." handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if (tag == "script" and "src" not in names) or tag == "style":
            self.found.append(f"<{tag}>")
        self.found += [f"<{tag} {name}=>" for name in names if name == "style" or name.startswith("on")]


def test_the_pages_have_no_inline_script_style_or_handler(client: Client, product: Product) -> None:
    """What the policy would block must not be in the pages to begin with (it would break them)."""
    for path in ("/", f"/products/{product.id}", "/cart/", "/accounts/login/", "/accounts/signup/", "/nope"):
        parser = _InlineCode()
        parser.feed(client.get(path).content.decode())
        assert parser.found == [], path


@pytest.mark.parametrize("config", ["devstack/nginx/replicas.conf.template", "deploy/nginx/compose.conf"])
def test_nginx_does_not_announce_its_version(config: str) -> None:
    lines = [line.strip() for line in (ROOT / config).read_text().splitlines()]
    assert "server_tokens off;" in lines
