"""Category filters (issue 17, item 4): an unknown category is a 404 page that lists the real ones (the
API: 404 `unknown_category` naming them), not an empty list headed with the typed name; a category
matches in any letter case, on the page and in the API. And a withdrawn product's page says it is no
longer available (410), where a missing one is 404 (item 3)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from catalog import selectors, services
from tests.support import catalog as catalog_support

pytestmark = pytest.mark.django_db


def _h1(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, "no h1"
    return match.group(1).strip()


def _category_links(html: str) -> list[str]:
    return re.findall(r'<a href="/\?category=([^"]+)">', html)


@pytest.mark.parametrize("typed", ["Nope", "x" * 61, "%00", "Book"])
def test_an_unknown_category_is_a_404_page_listing_the_real_ones(catalog: str, typed: str) -> None:
    response = Client().get(f"/?category={typed}")
    assert response.status_code == 404
    html = response.content.decode()
    assert _h1(html) == "No such category"
    assert "There is no category" in html
    real = [name for name, _ in selectors.search_products().facets]
    assert _category_links(html) == real
    assert 'role="search"' in html  # the shop's header is there


@pytest.mark.parametrize("typed", ["books", "BOOKS", " Books "])
def test_a_category_matches_in_any_letter_case(catalog: str, typed: str) -> None:
    exact = Client().get("/?category=Books").content.decode()
    response = Client().get("/", {"category": typed})
    assert response.status_code == 200
    html = response.content.decode()
    assert _h1(html) == "Books"
    assert re.search(r'id="result-count">(\d+) products', html)[1] == re.search(r'id="result-count">(\d+)', exact)[1]
    assert "<strong>Books</strong>" in html  # the facet is marked as the chosen one


def test_the_api_matches_categories_in_any_case_and_names_the_real_ones(catalog: str) -> None:
    exact = Client().get("/api/products?category=Books").json()
    lower = Client().get("/api/products?category=books").json()
    assert lower["total"] == exact["total"] > 0
    assert [item["id"] for item in lower["items"]] == [item["id"] for item in exact["items"]]

    unknown = Client().get("/api/products?category=Nope")
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["code"] == "unknown_category"
    assert error["message"].startswith("There is no category “Nope”. The categories are: Books, ")


def test_a_category_with_only_withdrawn_products_is_unknown_to_shoppers(empty_catalog: str) -> None:
    product = services.create_product(
        data=catalog_support.product_input(sku_prefix="CAT", category="Lanterns", price=Decimal("5.00"))
    )
    assert Client().get("/?category=lanterns").status_code == 200
    services.set_product_active(product_id=product.id, active=False)
    assert Client().get("/?category=lanterns").status_code == 404


def test_a_withdrawn_product_says_it_is_no_longer_available(catalog: str) -> None:
    product = services.create_product(
        data=catalog_support.product_input(sku_prefix="GONE", name="Brass Sextant", category="Books")
    )
    services.set_product_active(product_id=product.id, active=False)
    try:
        response = Client().get(f"/products/{product.id}")
        assert response.status_code == 410
        html = response.content.decode()
        assert _h1(html) == "No longer available"
        assert "“Brass Sextant” is no longer sold in this shop." in html
        assert '<a href="/?category=Books">Other products in Books</a>' in html
        assert "nothing at this address" not in html

        api = Client().get(f"/api/products/{product.id}")
        assert api.status_code == 404
        assert api.json()["error"] == {
            "code": "product_no_longer_available",
            "message": "“Brass Sextant” is no longer available.",
        }
    finally:
        services.set_product_active(product_id=product.id, active=True)
