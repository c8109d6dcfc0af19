"""Messages meant for people (issue 17, items 5 and 6): the API explains a bad sort order in words (no
regular expression) and a missing content type without "(not none)"; its docs page links to pages, not
to a repository path; a search the page and the API both read the same way (a NUL is no search at all,
and the box does not show it); "Out of stock" is said once on a product page."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from catalog.selectors import Product
from tests.support.api import api_client
from tests.support.cart import make_product, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]


@pytest.fixture(scope="module")
def product() -> Product:
    return make_product(price="12.50", stock=20)


def test_a_bad_sort_is_explained_in_words(product: Product) -> None:
    response = Client().get("/api/products?sort=cheapest")
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["sort"]
    assert message == ["Unknown sort order; use one of: name, price, -price, newest, relevance."]
    assert "^(" not in json.dumps(response.json())
    schema = Client().get("/api/openapi.json").json()
    sort = next(p for p in schema["paths"]["/api/products"]["get"]["parameters"] if p["name"] == "sort")
    assert sort["schema"]["enum"] == ["", "name", "price", "-price", "newest", "relevance"]
    assert "pattern" not in sort["schema"]


def test_a_body_without_a_content_type_is_told_so(product: Product) -> None:
    client = api_client(make_user())
    body = json.dumps({"productId": product.id, "quantity": 1})
    missing = client.generic("POST", "/api/user/cart", data=body, content_type="")
    assert missing.status_code == 415
    message = missing.json()["error"]["message"]
    assert "this request had no Content-Type" in message
    assert "none" not in message
    plain = client.generic("POST", "/api/user/cart", data=body, content_type="text/plain")
    assert "this request said text/plain" in plain.json()["error"]["message"]


def test_the_api_docs_link_to_pages_not_to_repository_paths() -> None:
    description = Client().get("/api/openapi.json").json()["info"]["description"]
    assert not re.search(r"\b(docs|tests|shopcart)/[\w/.-]+\.(md|py)\b", description)
    links = re.findall(r"\]\(([^)]+)\)", description)
    assert links
    for link in links:
        assert Client().get(link).status_code == 200, link


def test_a_nul_in_the_search_is_read_the_same_on_the_page_and_in_the_api(product: Product) -> None:
    everything = Client().get("/api/products").json()["total"]
    assert Client().get("/api/products?q=%00").json()["total"] == everything
    page = Client().get("/search?q=%00")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'id="result-count">(\d+) product', html)[1] == str(everything)
    assert "\x00" not in html
    assert 'name="q" value=""' in html
    assert "could not be read" not in html
    with_words = Client().get("/search?q=%00tele%09scope%00").content.decode()
    assert "Results for “tele scope”" in with_words
    assert 'name="q" value="tele scope"' in with_words


def test_out_of_stock_is_said_once_on_a_product_page() -> None:
    sold_out = make_product(stock=0)
    html = Client().get(f"/products/{sold_out.id}").content.decode()
    assert html.count("Out of stock") == 1
    assert "Add to cart" not in html
