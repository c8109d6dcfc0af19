"""Reads of the catalog. Other apps (the cart) use `get_product` and `get_products` from here.

Listings, facets and details are cached in Redis under keys that embed the catalog version, a
counter every product write increments (catalog.services): an edit makes every replica's cached
pages unreachable at once, with no per-key invalidation to get wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any

from django.core.cache import cache
from elasticsearch import NotFoundError

from catalog.documents import ProductDocument, products_alias
from catalog.errors import ProductNotFound
from shopcart import es
from shopcart.money import to_decimal

VERSION_KEY = "catalog:version"
CACHE_TTL = 300
MAX_PAGE_SIZE = 100
# Elasticsearch's default max_result_window: from + size must stay within it.
MAX_RESULT_WINDOW = 10_000

SORTS: dict[str, list[Any]] = {
    "name": [{"name.raw": "asc"}, {"sku": "asc"}],
    "price": [{"price_cents": "asc"}, {"sku": "asc"}],
    "-price": [{"price_cents": "desc"}, {"sku": "asc"}],
    "newest": [{"created_at": "desc"}, {"sku": "asc"}],
    "relevance": ["_score", {"sku": "asc"}],
}
SORT_LABELS = {
    "relevance": "Best match",
    "name": "Name",
    "price": "Price: low to high",
    "-price": "Price: high to low",
    "newest": "Newest",
}


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    name: str
    description: str
    category: str
    price_cents: int
    currency: str
    stock: int
    image_url: str
    active: bool
    created_at: datetime | None
    updated_at: datetime | None
    # Optimistic-concurrency token of the stored document (used by the staff edit form).
    seq_no: int | None = None
    primary_term: int | None = None

    @property
    def price(self) -> Decimal:
        return to_decimal(self.price_cents)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


@dataclass(frozen=True)
class ProductPage:
    items: list[Product]
    total: int
    page: int
    page_size: int
    query: str = ""
    category: str = ""
    sort: str = "name"
    facets: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def catalog_version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, 1, timeout=None)
        version = cache.get(VERSION_KEY, 1)
    return int(version)


def _cache_key(*parts: object) -> str:
    # The alias is part of the key so two catalogs sharing one Redis (tests, several shops) never mix.
    return ":".join(["catalog", f"v{catalog_version()}", products_alias(), *map(str, parts)])


def _from_hit(doc: ProductDocument) -> Product:
    return Product(
        id=doc.meta.id,
        sku=doc.sku,
        name=doc.name,
        description=doc.description or "",
        category=doc.category,
        price_cents=int(doc.price_cents),
        currency=doc.currency,
        stock=int(doc.stock),
        image_url=doc.image_url or "",
        active=bool(doc.active),
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        seq_no=getattr(doc.meta, "seq_no", None),
        primary_term=getattr(doc.meta, "primary_term", None),
    )


def get_product(*, product_id: str, include_inactive: bool = False, use_cache: bool = True) -> Product:
    """One product by id (a real-time GET, so a just-saved product is visible). Raises ProductNotFound."""
    key = _cache_key("product", product_id)
    product = cache.get(key) if use_cache else None
    if product is None:
        try:
            doc = ProductDocument.get(id=product_id, index=products_alias())
        except NotFoundError:
            raise ProductNotFound(f"No product with id {product_id!r}.") from None
        product = _from_hit(doc)
        if use_cache:
            cache.set(key, product, CACHE_TTL)
    if not product.active and not include_inactive:
        raise ProductNotFound(f"No product with id {product_id!r}.")
    return product


def get_products(*, product_ids: list[str]) -> dict[str, Product]:
    """Several products by id in one real-time multi-get; ids that do not exist are left out.
    Not cached: the cart summary needs the current price and stock."""
    if not product_ids:
        return {}
    docs = ProductDocument.mget(product_ids, index=products_alias(), missing="skip")
    return {doc.meta.id: _from_hit(doc) for doc in docs}


def search_products(
    *,
    query: str = "",
    category: str = "",
    sort: str = "",
    page: int = 1,
    page_size: int = 24,
    include_inactive: bool = False,
) -> ProductPage:
    """Active products matching `query` (full text, typo tolerant) and `category`, one page of them,
    with the category facet counts of the whole match (ignoring the category filter itself).
    `include_inactive` (the staff pages) also returns deactivated products, uncached."""
    query = query.strip()
    if sort not in SORTS:
        sort = "relevance" if query else "name"
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(1, min(page, MAX_RESULT_WINDOW // page_size))

    fingerprint = sha256(f"{query}\x00{category}\x00{sort}\x00{page}\x00{page_size}".encode()).hexdigest()[:32]
    key = _cache_key("search", fingerprint)
    cached = None if include_inactive else cache.get(key)
    if cached is not None:
        return cached

    search = ProductDocument.search(index=products_alias())
    if not include_inactive:
        search = search.filter("term", active=True)
    if query:
        search = search.query(
            "multi_match",
            query=query,
            fields=["name^3", "name.words^2", "category.text^2", "description", "sku^4"],
            fuzziness="AUTO",
            operator="and",
        )
    if category:
        # A post_filter narrows the hits but not the facet counts, so every category stays visible.
        search = search.post_filter("term", category=category)
    search.aggs.bucket("categories", "terms", field="category", size=100, order={"_key": "asc"})
    search = search.sort(*SORTS[sort]).extra(track_total_hits=True)
    start = (page - 1) * page_size
    response = search[start : start + page_size].execute()

    result = ProductPage(
        items=[_from_hit(hit) for hit in response],
        total=response.hits.total.value,
        page=page,
        page_size=page_size,
        query=query,
        category=category,
        sort=sort,
        facets=[(bucket.key, bucket.doc_count) for bucket in response.aggregations.categories.buckets],
    )
    if not include_inactive:
        cache.set(key, result, CACHE_TTL)
    return result


def count_products() -> int:
    client = es.client()
    if not client.indices.exists_alias(name=products_alias()):
        return 0
    return int(client.count(index=products_alias())["count"])
