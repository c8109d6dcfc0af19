"""Catalog against the real Elasticsearch and Redis: search, facets, pages, API, cache, seed, staff pages."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from html import escape
from typing import Any

import elastic_transport
import pytest
from django.core.management import call_command
from django.test import Client
from ninja.renderers import JSONRenderer as NinjaJSONRenderer

from catalog import cache as catalog_cache
from catalog import selectors, services
from catalog.schemas import ProductOut, ProductPageOut, page_json
from catalog.seeding import fixture_products
from catalog.services import ProductInput
from catalog.templatetags import catalog_tags
from shopcart import es
from tests.support import catalog as catalog_support

pytestmark = pytest.mark.django_db


def _product_input(**overrides: object) -> ProductInput:
    return catalog_support.product_input(sku_prefix="T", **overrides)


# --- search and facets -------------------------------------------------------------------------


def test_search_finds_a_product_by_a_misspelt_word(catalog: str) -> None:
    page = selectors.search_products(query="telscope")
    assert page.total >= 1
    assert all("Telescope" in product.name for product in page.items)


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("telscope", True),  # 8 letters: up to two edits (one letter missing here)
        ("tlescope", True),
        ("lanturn", True),  # 4-7 letters: one edit
        ("lantren", True),  # two neighbouring letters swapped count as one edit
        ("lxntxrn", False),  # two edits in a 7-letter word
        ("mxt", False),  # under 4 letters: as typed ("mat" one edit off; no name word begins with "mxt")
        ("antern", False),  # the first letter must be as typed
    ],
)
def test_search_typo_tolerance_rules(catalog: str, typed: str, found: bool) -> None:
    assert (selectors.search_products(query=typed).total > 0) is found


def test_search_covers_description_and_category(catalog: str) -> None:
    assert selectors.search_products(query="allotments").total == 30  # only in Garden descriptions
    assert {p.category for p in selectors.search_products(query="electronics", page_size=100).items} == {"Electronics"}


def test_search_puts_the_product_with_the_typed_sku_first(catalog: str) -> None:
    for typed in ("KIT-0001", "kit-0001"):
        assert selectors.search_products(query=typed).items[0].sku == "KIT-0001"
    # A SKU is an identifier: one character off is another product, not a typo to forgive.
    assert "KIT-0001" not in {p.sku for p in selectors.search_products(query="KIT-0008").items}


def test_facet_counts_match_the_data(catalog: str) -> None:
    expected = Counter(product["category"] for product in fixture_products())
    page = selectors.search_products()
    assert dict(page.facets) == dict(expected)
    assert page.total == sum(expected.values()) == 240

    # The facets describe the whole match, even while one category is selected.
    filtered = selectors.search_products(category="Books")
    assert filtered.total == expected["Books"]
    assert dict(filtered.facets) == dict(expected)


def test_facets_follow_the_search_query(catalog: str) -> None:
    page = selectors.search_products(query="telescope")
    assert dict(page.facets) == {"Outdoor": page.total}


def test_sorting_and_paging(catalog: str) -> None:
    cheapest = selectors.search_products(sort="price", page_size=100).items
    assert [p.price_cents for p in cheapest] == sorted(p.price_cents for p in cheapest)
    dearest = selectors.search_products(sort="-price", page_size=5).items
    assert dearest[0].price_cents == max(p["price_cents"] for p in fixture_products())

    first, second = selectors.search_products(page=1, page_size=10), selectors.search_products(page=2, page_size=10)
    assert not {p.id for p in first.items} & {p.id for p in second.items}
    assert first.pages == 24


def test_inactive_products_are_hidden_from_shoppers(catalog: str) -> None:
    product = services.create_product(data=_product_input(name="Hidden Samovar", active=False))
    assert selectors.search_products(query="samovar").total == 0
    with pytest.raises(selectors.ProductNotFound):
        selectors.get_product(product_id=product.id)
    assert selectors.get_product(product_id=product.id, include_inactive=True).name == "Hidden Samovar"


# --- writes and the cache ----------------------------------------------------------------------


def test_sku_is_unique(empty_catalog: str) -> None:
    services.create_product(data=_product_input(sku="UNIQ-1"))
    with pytest.raises(services.SkuAlreadyExists):
        services.create_product(data=_product_input(sku="uniq-1"))  # same SKU in another case


def test_price_is_stored_exactly(empty_catalog: str) -> None:
    product = services.create_product(data=_product_input(price=Decimal("0.10")))
    raw = es.client().get(index=selectors.products_alias(), id=product.id)["_source"]
    assert raw["price_cents"] == 10
    assert selectors.get_product(product_id=product.id).price == Decimal("0.10")
    with pytest.raises(services.InvalidProduct) as error:
        services.create_product(data=_product_input(price=Decimal("1.005")))
    assert "price" in error.value.fields


def test_stale_edit_is_refused(empty_catalog: str) -> None:
    product = services.create_product(data=_product_input())
    services.update_product(
        product_id=product.id,
        data=_product_input(sku=product.sku, name="First edit"),
        if_seq_no=product.seq_no,
        if_primary_term=product.primary_term,
    )
    with pytest.raises(services.ProductChanged):
        services.update_product(
            product_id=product.id,
            data=_product_input(sku=product.sku, name="Second edit from a stale form"),
            if_seq_no=product.seq_no,
            if_primary_term=product.primary_term,
        )
    assert selectors.get_product(product_id=product.id).name == "First edit"


def _record_multi_gets(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids of every Elasticsearch multi-get the offers make from now on."""
    fetched: list[list[str]] = []
    real_multi_get = selectors._multi_get

    def recording(product_ids: list[str], **kwargs: Any) -> Any:
        fetched.append(list(product_ids))
        return real_multi_get(product_ids, **kwargs)

    monkeypatch.setattr(selectors, "_multi_get", recording)
    return fetched


def test_offers_are_cached_and_an_edit_retires_only_its_bucket(
    empty_catalog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = services.create_product(data=_product_input(price=Decimal("4.00"), stock=3))
    other = services.create_product(data=_product_input())
    while catalog_cache.offer_bucket(other.id) == catalog_cache.offer_bucket(edited.id):
        other = services.create_product(data=_product_input())
    ids = [edited.id, other.id]

    offers = selectors.get_offers(product_ids=[edited.id, "no-such-product", *ids])
    assert set(offers) == set(ids)
    assert offers[edited.id] == selectors.Offer(edited.id, edited.sku, edited.name, 400, "USD", 3, True)

    fetched = _record_multi_gets(monkeypatch)
    # Cached: no Elasticsearch read at all.
    assert selectors.get_offers(product_ids=ids) == offers
    assert fetched == []

    # An edit: its new price at once; only its own bucket is read again, the other offer stays cached.
    services.update_product(product_id=edited.id, data=_product_input(sku=edited.sku, price=Decimal("5.50")))
    after = selectors.get_offers(product_ids=ids)
    assert (after[edited.id].price_cents, after[other.id]) == (550, offers[other.id])
    assert fetched == [[edited.id]]


def test_a_bulk_load_keeps_the_cached_offers_and_finds_the_new_products(
    empty_catalog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk load only creates products (an existing one is left as it is), and a product that did not
    exist is in no offer hash: the listings are retired, the offers are not."""
    existing = services.create_product(data=_product_input(price=Decimal("2.00")))
    offers = selectors.get_offers(product_ids=[existing.id, "bulk-new-1"])
    assert set(offers) == {existing.id}
    version = selectors.catalog_version()
    fetched = _record_multi_gets(monkeypatch)
    loaded = {"sku": "BULK-NEW-1", "name": "Bulk mug", "description": "", "category": "Kitchen"}
    loaded |= {"price_cents": 300, "currency": "USD", "stock": 5, "image_url": "", "active": True}
    created = services.bulk_load_products(products=[{"id": "bulk-new-1", **loaded}, {"id": existing.id, **loaded}])

    assert created == 1  # the existing product is left exactly as it was
    assert selectors.catalog_version() > version  # listings and summaries are recomputed
    after = selectors.get_offers(product_ids=[existing.id, "bulk-new-1"])
    assert (after[existing.id], after["bulk-new-1"].price_cents) == (offers[existing.id], 300)
    assert fetched == [["bulk-new-1"]]  # only the new product is read; the existing offer stayed cached


def test_cached_pages_show_an_admin_edit_immediately(catalog: str, admin_client: Client) -> None:
    product = selectors.get_product(product_id="kit-0001")
    # Warm every cache: list page, search API and detail.
    assert escape(product.name) in Client().get("/search?q=chef").content.decode()
    assert Client().get("/api/products?q=knife").json()["total"] > 0
    assert Client().get(f"/api/products/{product.id}").json()["name"] == product.name

    response = admin_client.post(
        f"/admin/catalog/products/{product.id}/change/",
        {
            "sku": product.sku,
            "name": "Renamed Santoku Knife",
            "description": product.description,
            "category": product.category,
            "price": "77.70",
            "currency": "USD",
            "stock": product.stock,
            "image_url": product.image_url,
            "active": "on",
            "seq_no": product.seq_no,
            "primary_term": product.primary_term,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    try:
        assert "Renamed Santoku Knife" in Client().get("/search?q=knife").content.decode()
        names = [item["name"] for item in Client().get("/api/products?q=santoku").json()["items"]]
        assert names == ["Renamed Santoku Knife"]
        detail = Client().get(f"/api/products/{product.id}").json()
        assert (detail["name"], detail["price"]) == ("Renamed Santoku Knife", "77.70")
    finally:
        current = selectors.get_product(product_id=product.id, use_cache=False)
        services.update_product(
            product_id=product.id,
            data=ProductInput(
                sku=product.sku,
                name=product.name,
                description=product.description,
                category=product.category,
                price=product.price,
                currency=product.currency,
                stock=product.stock,
                image_url=product.image_url,
            ),
            if_seq_no=current.seq_no,
            if_primary_term=current.primary_term,
        )


# --- seed --------------------------------------------------------------------------------------


def test_seed_is_idempotent(empty_catalog: str) -> None:
    call_command("seed")
    before = {hit["_id"]: hit["_seq_no"] for hit in _all_hits()}
    call_command("seed")
    after = {hit["_id"]: hit["_seq_no"] for hit in _all_hits()}
    assert len(before) == 240
    assert after == before  # not one document written again


def test_seed_products_counts_are_exact(empty_catalog: str) -> None:
    call_command("seed", products=1234)
    assert selectors.count_products() == 1234
    call_command("seed", products=1234)
    assert selectors.count_products() == 1234
    call_command("seed", products=1500)
    assert selectors.count_products() == 1500
    call_command("seed", reset=True, products=10)
    assert selectors.count_products() == 10


def test_seed_if_empty_leaves_a_catalog_alone(empty_catalog: str) -> None:
    call_command("seed", products=5)
    call_command("seed", if_empty=True)
    assert selectors.count_products() == 5


def _all_hits() -> list[dict]:
    client = es.client()
    client.indices.refresh(index=selectors.products_alias())
    response = client.search(index=selectors.products_alias(), size=1000, seq_no_primary_term=True)
    return response["hits"]["hits"]


# --- pages -------------------------------------------------------------------------------------


def test_product_list_page(catalog: str) -> None:
    html = Client().get("/?category=Books&sort=-price").content.decode()
    assert "30 products" in html
    prices = [Decimal(p.replace(",", "")) for p in re.findall(r'class="price">\$([\d,.]+)<', html)]
    assert prices == sorted(prices, reverse=True)
    assert len(prices) == 24
    assert 'rel="next"' in html


def test_listing_forms_stay_per_request_though_the_cards_are_rendered_once(catalog: str) -> None:
    """The product cards are rendered once per process and set of products (catalog_tags.product_grid);
    what a card holds of the request is still the request's own: a fresh idempotency token per form,
    this request's CSRF token and this request's address to come back to."""
    pages = [
        Client().get(path).content.decode()
        for path in ("/?category=Books&sort=-price", "/?sort=-price&category=Books&x=<1>")
    ]
    tokens = [re.findall(r'name="idempotency_key" value="([0-9a-f]{32})"', html) for html in pages]
    forms = pages[0].count('class="add-to-cart"')
    assert forms > 10
    assert [len(t) for t in tokens] == [forms, forms]
    assert len(set(tokens[0]) | set(tokens[1])) == 2 * forms
    csrf = [set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)) for html in pages]
    assert all(len(values) == 1 for values in csrf)  # one per page, in every form
    assert csrf[0] != csrf[1]
    nexts = [set(re.findall(r'name="next" value="([^"]*)"', html)) for html in pages]
    assert nexts == [{"/?category=Books&amp;sort=-price"}, {"/?sort=-price&amp;category=Books&amp;x=%3C1%3E"}]
    assert "\x00" not in pages[0] + pages[1]


def test_the_listing_is_rendered_once_per_result_and_query_string(catalog: str) -> None:
    """The list page's content is kept per search result and query string (catalog_tags.product_listing):
    the same products under another query string still link with that query string, and a kept listing
    is byte for byte what rendering it afresh gives."""
    pages = [
        Client().get(path).content.decode() for path in ("/?category=Books&sort=-price", "/?sort=-price&category=Books")
    ]
    assert '<a href="?category=Books&amp;sort=-price&amp;page=2" rel="next">' in pages[0]
    assert '<a href="?sort=-price&amp;category=Books&amp;page=2" rel="next">' in pages[1]

    def normalised(html: str) -> str:
        html = re.sub(r'name="idempotency_key" value="[0-9a-f]{32}"', "KEY", html)
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)

    kept = normalised(Client().get("/?category=Books&sort=-price").content.decode())
    catalog_tags._clear_rendered()
    assert normalised(Client().get("/?category=Books&sort=-price").content.decode()) == kept == normalised(pages[0])


def test_the_search_api_answers_what_django_ninja_would_serialise(catalog: str) -> None:
    """The API's search answer is written and cached as JSON bytes (schemas.page_json), not through the
    response schema: it must be exactly what django-ninja makes of a validated ProductPageOut."""
    site_url = "http://testserver/"
    for params in (
        {"q": "telescope"},
        {"category": "Books", "sort": "-price", "page": 2, "page_size": 5},
        {"q": "samovar"},
    ):
        page = selectors.search_products(**{("query" if k == "q" else k): v for k, v in params.items()})
        validated = ProductPageOut.model_validate(
            {
                "items": [ProductOut.from_product(product, site_url=site_url).model_dump() for product in page.items],
                "total": page.total,
                "page": page.page,
                "page_size": page.page_size,
                "facets": [{"category": name, "count": count} for name, count in page.facets],
            }
        )
        expected = NinjaJSONRenderer().render(None, validated.model_dump(), response_status=200).encode()  # type: ignore[arg-type]
        assert page_json(page, site_url=site_url) == expected
        for attempt in ("miss", "hit"):
            response = Client().get("/api/products", params)
            assert response.status_code == 200, attempt
            assert response["Content-Type"] == "application/json; charset=utf-8"
            assert response.content == expected, attempt


def test_search_page_and_bad_parameters(catalog: str) -> None:
    html = Client().get("/search?q=telscope").content.decode()
    assert "Brass Telescope" in html
    assert Client().get("/?page=abc&sort=nonsense").status_code == 200


def _h1(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, "no h1"
    return match.group(1)


@pytest.mark.parametrize("bad", ["page=0", "page=abc", "page=-3", "sort=bogus"])
def test_one_bad_parameter_keeps_the_search(catalog: str, bad: str) -> None:
    response = Client().get(f"/search?q=telescope&{bad}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Results for “telescope”" in _h1(html)
    assert "Brass Telescope" in html
    if bad.startswith("sort"):
        assert "That sort order is unknown, so the usual order is used." in html


def test_the_staff_list_keeps_the_search_too(catalog: str, admin_client: Client) -> None:
    html = admin_client.get("/admin/catalog/products/?q=telescope&page=abc").content.decode()
    assert "Brass Telescope" in html
    assert "240 products" not in html  # not the whole catalog


def test_a_too_long_search_is_shortened_and_said_so(catalog: str) -> None:
    html = Client().get("/search", {"q": "telescope " + "z" * 240}).content.decode()
    assert "Results for “telescope zzz" in _h1(html)
    assert "only its first 200 characters were used" in html


def test_a_page_past_the_end_redirects_to_the_last_page(catalog: str) -> None:
    response = Client().get("/?category=Books&sort=-price&page=11")
    assert response.status_code == 302
    assert response["Location"] == "/?category=Books&sort=-price&page=2"  # 30 products, 24 a page
    last = Client().get(response["Location"]).content.decode()
    assert "Page 2 of 2" in last
    assert "No products match" not in last
    assert Client().get("/?page=99999").status_code == 302  # over the form's maximum: clamped, then the last


def test_product_detail_page_and_404(catalog: str) -> None:
    response = Client().get("/products/kit-0001")
    assert response.status_code == 200
    assert "KIT-0001" in response.content.decode()
    missing = Client().get("/products/no-such-product")
    assert missing.status_code == 404
    assert "Not found" in missing.content.decode()


def test_hostile_text_is_escaped(empty_catalog: str) -> None:
    product = services.create_product(data=_product_input(name="<script>alert(1)</script> Kettle"))
    html = Client().get(f"/products/{product.id}").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Kettle" in html
    search_html = Client().get("/search", {"q": '"><img src=x onerror=alert(1)>'}).content.decode()
    assert "<img src=x onerror" not in search_html


# --- API ---------------------------------------------------------------------------------------


def test_api_lists_products_with_decimal_prices(catalog: str) -> None:
    body = Client().get("/api/products", {"category": "Kitchen", "sort": "price", "page_size": 5}).json()
    assert body["total"] == 30
    assert body["page"] == 1
    assert body["page_size"] == 5
    item = body["items"][0]
    assert set(item) == {"id", "sku", "name", "description", "category", "price", "currency", "stock", "imageUrl"}
    assert re.fullmatch(r"\d+\.\d{2}", item["price"])


def test_api_detail_and_errors(catalog: str) -> None:
    assert Client().get("/api/products/kit-0001").json()["sku"] == "KIT-0001"
    missing = Client().get("/api/products/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "product_not_found"
    bad = Client().get("/api/products", {"page_size": 0, "sort": "cheap"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"page_size", "sort"}


# --- staff pages -------------------------------------------------------------------------------


def test_admin_product_pages_refuse_non_staff(catalog: str, django_user_model) -> None:  # type: ignore[no-untyped-def]
    shopper = django_user_model.objects.create_user(email="shopper@example.com", password="x-Passw0rd!", name="S")
    urls = [
        "/admin/catalog/products/",
        "/admin/catalog/products/add/",
        "/admin/catalog/products/kit-0001/change/",
    ]
    anonymous, customer = Client(), Client()
    customer.force_login(shopper)
    for client in (anonymous, customer):
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302, url
            assert "/admin/login/" in response["Location"], url
        response = client.post("/admin/catalog/products/kit-0001/active/", {"active": "0"})
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    assert selectors.get_product(product_id="kit-0001").active


def test_staff_can_create_find_and_deactivate(empty_catalog: str, admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/catalog/products/add/",
        {
            "sku": "ADM-1",
            "name": "Admin Lantern",
            "category": "Outdoor",
            "price": "19.99",
            "currency": "USD",
            "stock": 4,
        },
    )
    assert response.status_code == 302
    listing = admin_client.get("/admin/catalog/products/?q=lantern").content.decode()
    assert "Admin Lantern" in listing
    assert "Catalog" in admin_client.get("/admin/").content.decode()

    duplicate = admin_client.post(
        "/admin/catalog/products/add/",
        {"sku": "adm-1", "name": "Again", "category": "Outdoor", "price": "1.00", "currency": "USD", "stock": 1},
    )
    assert duplicate.status_code == 200
    assert "This SKU is taken." in duplicate.content.decode()

    admin_client.post("/admin/catalog/products/adm-1/active/", {"active": "0"})
    assert Client().get("/api/products/adm-1").status_code == 404
    assert "Admin Lantern" in admin_client.get("/admin/catalog/products/").content.decode()


@pytest.mark.parametrize("query", ["", "steel mug", "KIT-0001"])
@pytest.mark.parametrize("category", ["", "Kitchen"])
@pytest.mark.parametrize("active_only", [True, False])
def test_the_search_body_is_what_elasticsearch_dsl_builds(query: str, category: str, active_only: bool) -> None:
    """The search is built as a plain dict (selectors._search_body, cheaper on every search); it must be
    exactly the request elasticsearch-dsl built from the same rules."""
    from elasticsearch_dsl import Q

    from catalog.documents import ProductDocument

    search = ProductDocument.search()
    if active_only:
        search = search.filter("term", active=True)
    if query:
        search = search.query(Q("bool", **selectors._text_query(query)))
    if category:
        search = search.post_filter("term", category=category)
    search.aggs.bucket("categories", "terms", field="category", size=100, order={"_key": "asc"})
    search = search.sort(*selectors.SORTS["price"]).extra(track_total_hits=True)
    expected = search[24:48].to_dict()
    body = selectors._search_body(
        query=query, category=category, sort="price", start=24, size=24, active_only=active_only
    )
    assert body == expected


class _LosingWriter:
    """The one conditional writer (es.writer), except that the answer to its next `index` is lost after the
    write went through (a dropped connection, a node dying)."""

    def __init__(self) -> None:
        self.real = es.writer()
        self.writes = 0

    def index(self, **kwargs: Any) -> Any:
        self.writes += 1
        self.real.index(**kwargs)
        raise elastic_transport.ConnectionError("connection reset after the write")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_conditional_product_writes_go_through_the_one_non_retrying_writer(empty_catalog: str, monkeypatch) -> None:
    """A resent conditional write whose first answer was lost would come back as a false "SKU exists" or
    "changed meanwhile", and skip the cache bump; the writer never resends, and a lost answer bumps."""
    assert es.writer()._max_retries == 0  # the client option the transport reads per request
    losing = _LosingWriter()
    monkeypatch.setattr(es, "writer", lambda: losing)
    data = _product_input()
    before = catalog_cache.catalog_version()

    with pytest.raises(elastic_transport.ConnectionError):  # a 503, not SkuAlreadyExists
        services.create_product(data=data)
    assert losing.writes == 1
    assert catalog_cache.catalog_version() > before  # the product may exist: what was cached is retired
    product = selectors.get_product(product_id=data.sku.lower(), include_inactive=True, use_cache=False)
    assert product.sku == data.sku

    bumped = catalog_cache.catalog_version()
    with pytest.raises(elastic_transport.ConnectionError):  # not ProductChanged
        services.update_product(product_id=product.id, data=catalog_support.input_of(product, name="Renamed"))
    assert losing.writes == 2
    assert catalog_cache.catalog_version() > bumped
    monkeypatch.undo()
    assert selectors.get_product(product_id=product.id, use_cache=True).name == "Renamed"
