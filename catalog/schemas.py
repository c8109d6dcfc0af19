"""API shapes of the catalog (validation and serialisation only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urljoin

from ninja import Field, Schema
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from catalog.models import CATEGORY_MAX_LENGTH
from catalog.selectors import MAX_PAGE_SIZE, MAX_SUGGESTIONS, SORTS, Product, ProductPage, Suggestion
from shopcart.money import format_amount

SORT_NAMES = ", ".join(SORTS)


def _known_sort(sort: str) -> str:
    """A sort order is one of SORTS; anything else is told so in words (pydantic's `pattern` would show
    the regular expression)."""
    if sort and sort not in SORTS:
        raise PydanticCustomError("unknown_sort", f"Unknown sort order; use one of: {SORT_NAMES}.")
    return sort


class ProductQuery(Schema):
    q: str = Field("", max_length=200, description="Full-text search over name, description, category and SKU")
    category: str = Field(
        "", max_length=CATEGORY_MAX_LENGTH, description="A category's name, in any letter case; unknown: 404"
    )
    sort: Annotated[str, AfterValidator(_known_sort)] = Field(
        "",
        description=f"One of: {SORT_NAMES}. Default: relevance with `q`, name without.",
        json_schema_extra={"enum": ["", *SORTS]},
    )
    page: int = Field(1, ge=1, le=10_000)
    page_size: int = Field(24, ge=1, le=MAX_PAGE_SIZE)


class ProductOut(Schema):
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: str = Field(description='Decimal string, e.g. "12.50"')
    currency: str
    stock: int
    imageUrl: str = Field(
        description="Absolute URL of the product's picture: the image staff gave (http/https), or the "
        "picture the shop generates for the product (SVG)"
    )

    @classmethod
    def from_product(cls, product: Product, *, site_url: str) -> ProductOut:
        """`site_url`: this site's address (request.build_absolute_uri("/")), for the generated images."""
        # model_construct: the values come typed from a Product, so validating them again (through
        # django-ninja's per-object wrapper) only cost time, ~40 us per product on every listing.
        return cls.model_construct(**_product_fields(product, site_url=site_url))


def _product_fields(product: Product, *, site_url: str) -> dict[str, object]:
    """A product as ProductOut's fields, in their order."""
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "price": format_amount(product.price_cents),
        "currency": product.currency,
        "stock": product.stock,
        "imageUrl": _absolute(site_url, product.image_src),
    }


def _absolute(site_url: str, src: str) -> str:
    """`urljoin(site_url, src)`. For a path from the root without dot segments (what a generated image's
    address is) that is the site's origin followed by the path, without parsing both addresses as
    urljoin does (~15 us a product, a tenth of a listing's CPU)."""
    if src[:1] == "/" and src[1:2] != "/" and "/." not in src:
        scheme_end = site_url.find("://")
        if scheme_end > 0:
            path_start = site_url.find("/", scheme_end + 3)
            return (site_url if path_start < 0 else site_url[:path_start]) + src
    return urljoin(site_url, src)


class FacetOut(Schema):
    category: str
    count: int


class ProductPageOut(Schema):
    items: list[ProductOut]
    total: int
    page: int
    page_size: int
    facets: list[FacetOut]


def page_json(page: ProductPage, *, site_url: str) -> bytes:
    """`page` as a ProductPageOut, serialised exactly as django-ninja serialises one (json.dumps of its
    fields, in their order; tests/catalog/test_catalog.py compares the two), from plain dicts: no model
    per product to build and dump again (~0.1 ms less per page of 24, bench/README.md). The API caches
    these bytes (selectors.search_products_rendered)."""
    out = {
        "items": [_product_fields(product, site_url=site_url) for product in page.items],
        "total": page.total,
        "page": page.page,
        "page_size": page.page_size,
        "facets": [{"category": name, "count": count} for name, count in page.facets],
    }
    return json.dumps(out).encode()


class SuggestionQuery(Schema):
    q: str = Field(
        "", max_length=200, description="What has been typed so far (2 characters at least, else no suggestions)"
    )
    limit: int = Field(6, ge=1, le=MAX_SUGGESTIONS)


class SuggestionOut(Schema):
    id: str
    name: str
    category: str
    url: str = Field(description="Absolute URL of the product's page")


class SuggestionsOut(Schema):
    query: str
    suggestions: list[SuggestionOut] = Field(description="The first products the search for `query` lists")

    @classmethod
    def of(cls, query: str, suggestions: list[Suggestion], *, product_url: Callable[[str], str]) -> SuggestionsOut:
        """`product_url(id)`: the absolute address of a product's page."""
        items = [
            SuggestionOut(id=item.id, name=item.name, category=item.category, url=product_url(item.id))
            for item in suggestions
        ]
        return cls(query=query, suggestions=items)
