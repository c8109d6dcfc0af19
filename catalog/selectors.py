"""Reads of the catalog. The cart reads what it needs of a product through `get_offers` only.

Listings, facets, details and offers are cached in Redis under the keys and versions of
catalog.cache: an edit makes every replica's cached pages unreachable at once, with no per-key
invalidation to get wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any, NamedTuple

from django.core.cache import cache
from elasticsearch import NotFoundError
from elasticsearch.exceptions import RequestError

from catalog import cache as catalog_cache
from catalog import images, search_words

# Other apps read the catalog through this module only: the cart records the version it priced at.
from catalog.cache import catalog_version, catalog_version_and_entry  # noqa: F401
from catalog.documents import PREFIX_MIN_CHARS, ProductDocument, products_alias

# Raised by get_product; other apps catch them from here.
from catalog.errors import ProductNoLongerAvailable, ProductNotFound, UnknownCategory
from shopcart import es
from shopcart.money import to_decimal

MAX_PAGE_SIZE = 100
# Elasticsearch's default max_result_window: from + size must stay within it.
MAX_RESULT_WINDOW = 10_000
# Edits a search word may be off by: none below 4 letters, one below 8, two from 8 (see _text_query).
TYPO_TOLERANCE = "AUTO:4,8"
TYPO_MIN_LENGTH = 4
# What shoppers see: deactivated products are only on the staff pages.
ACTIVE_ONLY = {"term": {"active": True}}

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

    @property
    def image_src(self) -> str:
        """The address an <img> shows: the staff's image, else the generated one (catalog.images)."""
        return images.image_src(self)

    @property
    def image_fallback(self) -> str:
        """What the <img> shows if the staff's image fails to load: the generated picture ("" without one)."""
        return images.generated_fallback_path(self.id) if images.has_own_image(self) else ""


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


# Products are built straight from the stored JSON, not through elasticsearch-dsl documents: the DSL's
# per-field machinery (dateutil for each date) cost ~0.15 ms per product, which made a 200-line cart
# summary ~25x slower than a 1-line one (bench/README.md). The dates are ISO 8601 as we write them.
_DATE_FIELD = ProductDocument._doc_type.mapping["created_at"]


def _datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return _DATE_FIELD.deserialize(value)  # anything else (epoch millis, odd formats): as the DSL reads it


def _from_source(
    product_id: str, source: dict[str, Any], *, seq_no: int | None = None, primary_term: int | None = None
) -> Product:
    return Product(
        id=product_id,
        sku=source.get("sku"),
        name=source.get("name"),
        description=source.get("description") or "",
        category=source.get("category"),
        price_cents=int(source.get("price_cents")),
        currency=source.get("currency"),
        stock=int(source.get("stock")),
        image_url=source.get("image_url") or "",
        active=bool(source.get("active")),
        created_at=_datetime(source.get("created_at")),
        updated_at=_datetime(source.get("updated_at")),
        seq_no=seq_no,
        primary_term=primary_term,
    )


def get_product(*, product_id: str, include_inactive: bool = False, use_cache: bool = True) -> Product:
    """One product by id (a real-time GET, so a just-saved product is visible). Raises ProductNotFound."""
    # Uncached reads (the staff pages, the writes' answers) skip the key, and so a Redis round trip.
    key = catalog_cache.key("product", product_id) if use_cache else None
    product = cache.get(key) if key else None
    if product is None:
        try:
            response = es.client().get(index=products_alias(), id=product_id)
        except NotFoundError:
            raise ProductNotFound(f"No product with id {product_id!r}.") from None
        if not response.get("found", False):
            raise ProductNotFound(f"No product with id {product_id!r}.")
        product = _from_source(
            response["_id"], response["_source"], seq_no=response["_seq_no"], primary_term=response["_primary_term"]
        )
        if key:
            cache.set(key, product, catalog_cache.TTL)
    if not product.active and not include_inactive:
        raise ProductNoLongerAvailable(f"“{product.name}” is no longer available.")
    return product


class Offer(NamedTuple):
    """A product as the cart prices it: what it is sold as, for how much, and how many are left.
    (A named tuple: a cart builds one per line on every write, and tuples are the cheapest to build.)"""

    id: str
    sku: str
    name: str
    price_cents: int
    currency: str
    stock: int
    active: bool


_OFFER_FIELDS = ["sku", "name", "price_cents", "currency", "stock", "active"]


def get_offers(*, product_ids: list[str]) -> dict[str, Offer]:
    """The current offers of several products; ids that do not exist are left out.

    Cached in Redis, one hash per bucket and bucket version (a field per product, a compact JSON array),
    so pricing a 200-line cart takes one round trip (catalog.cache.read_offers: the versions of its
    buckets and each bucket's HMGET, in one script). The misses come from one multi-get of just these
    fields and are added to their hashes. Never older than the bucket versions: what is cached under a
    version was read after that version was (the write order that makes this consistent with the
    catalog version: catalog.cache)."""
    if not product_ids:
        return {}
    by_bucket: dict[int, list[str]] = {}
    for product_id in dict.fromkeys(product_ids):
        by_bucket.setdefault(catalog_cache.offer_bucket(product_id), []).append(product_id)
    hash_keys, cached = catalog_cache.read_offers(by_bucket)
    hits = [
        (product_id, value)
        for bucket, values in cached.items()
        for product_id, value in zip(by_bucket[bucket], values, strict=True)
        if value is not None
    ]
    # One JSON array of all the cached values: a single parse instead of one per product.
    parsed = json.loads(b"[" + b",".join(value for _, value in hits) + b"]") if hits else []
    offers = {product_id: Offer(product_id, *fields) for (product_id, _), fields in zip(hits, parsed, strict=True)}
    missing = [product_id for product_id in dict.fromkeys(product_ids) if product_id not in offers]
    if missing:
        fetched: dict[int, dict[str, str]] = {}
        for doc in _multi_get(missing, source_includes=_OFFER_FIELDS):
            source = doc["_source"]
            fields = [str(source["sku"]), str(source["name"]), int(source["price_cents"]), str(source["currency"])]
            fields += [int(source["stock"]), bool(source["active"])]
            offers[doc["_id"]] = Offer(doc["_id"], *fields)  # type: ignore[arg-type]
            bucket = fetched.setdefault(catalog_cache.offer_bucket(doc["_id"]), {})
            bucket[doc["_id"]] = json.dumps(fields, separators=(",", ":"))
        pipeline = catalog_cache.redis().pipeline(transaction=False)
        for bucket, mapping in fetched.items():
            pipeline.hset(hash_keys[bucket], mapping=mapping)
            # From the hash's creation, not renewed by later fills: like every cached product, an offer
            # is at most TTL old even if something wrote to Elasticsearch behind the app's back.
            pipeline.expire(hash_keys[bucket], catalog_cache.TTL, nx=True)
        pipeline.execute()
    return offers


def _multi_get(product_ids: list[str], *, source_includes: list[str] | None = None) -> list[dict[str, Any]]:
    """The found documents of one real-time multi-get (a missing id is left out, a failed one raises)."""
    options = {"source_includes": source_includes} if source_includes else {}
    response = es.client().mget(index=products_alias(), ids=product_ids, **options)
    failed = [doc for doc in response["docs"] if not doc.get("found") and doc.get("error")]
    if failed:  # as elasticsearch-dsl's mget did: a per-document error is not "missing"
        raise RequestError(400, f"mget failed for {', '.join(doc['_id'] for doc in failed)}", failed)  # type: ignore[arg-type]
    return [doc for doc in response["docs"] if doc.get("found")]


# How a search ranks (docs/adr/0008): each required word of the query adds the tiers it reaches, so a
# whole word of the name outranks a singular or plural of it, that the beginning of a name word (the last
# word, as it is typed), that a word of the category or description, and all of them a typo. A typo's own
# relevance (weighted down) only orders the matches within a tier.
NAME_WORD_SCORE = 10.0
NAME_FORM_SCORE = 8.0
NAME_PREFIX_SCORE = 6.0
OTHER_WORD_SCORE = 3.0
NAME_PHRASE_SCORE = 5.0  # the whole query, in order, in the name
TYPO_WEIGHT = 0.2
TEXT_FIELDS = ["name^3", "name.words^2", "category.text^2", "description"]
OTHER_FIELDS = ["category.text", "description"]


def _scored(condition: dict[str, Any], score: float) -> dict[str, Any]:
    return {"constant_score": {"filter": condition, "boost": score}}


def _word_query(word: str, *, last: bool) -> dict[str, Any]:
    """What one word of the query may match, each way with its tier (NAME_WORD_SCORE...): at least one.
    The ways overlap as little as they can (a form other than the word itself; a typo only from 4 letters
    on, where one is allowed): each clause walks all of its matches, and overlapping ones cost
    Elasticsearch twice the time this query adds to the old one (docs/adr/0008)."""
    forms = search_words.word_forms(word)
    # As typed (for a word of letters: the term itself; else analysed, "kit-0001" is "kit" and "0001").
    exact = (
        [{"terms": {field: forms}} for field in OTHER_FIELDS]
        if word.isalpha()
        else [{"multi_match": {"query": word, "fields": OTHER_FIELDS, "operator": "and"}}]
    )
    should = [
        _scored({"match": {"name": {"query": word, "operator": "and"}}}, NAME_WORD_SCORE),
        _scored({"bool": {"should": exact}}, OTHER_WORD_SCORE),
    ]
    if len(forms) > 1:
        should.append(_scored({"terms": {"name.words": forms[1:]}}, NAME_FORM_SCORE))
    if last and word.isalpha() and len(word) >= PREFIX_MIN_CHARS:
        should.append(_scored({"prefix": {"name.words": word}}, NAME_PREFIX_SCORE))
    if len(word) >= TYPO_MIN_LENGTH:
        typo = {"query": word, "fields": TEXT_FIELDS, "fuzziness": TYPO_TOLERANCE, "operator": "and"}
        should.append({"multi_match": {**typo, "prefix_length": 1, "boost": TYPO_WEIGHT}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _text_query(query: str) -> dict[str, Any]:
    """Every word must match in one of the text fields, or the whole query is a SKU (docs/adr/0008).

    A word matches as written, as its singular or plural (search_words.word_forms: "trains" finds
    "Toy Train Set"), as the beginning of a name word if it is the last word ("tele" finds
    "Telescope", while it is being typed), or with a typo. Stop words ("and", "the") are not required
    when the query has other words, and match only names, as written, when it has not.

    Typo tolerance (docs/adr/0004): a word of 4 to 7 letters may be one edit off, a longer one two;
    shorter words and the first letter must be as typed. Those are the usual rules of shop search
    (Algolia's defaults): a 3-letter word one edit off is mostly another word ("mug": "bug", "mud"),
    and the fuzzy automata for short words and a free first letter were most of Elasticsearch's time
    per search (4-5 ms of ~5.5 on 100 000 products; ~1.5 ms with these rules, bench/README.md).
    A SKU is an identifier: matched exactly (case-insensitively), never fuzzily, and boosted so that
    typing one finds that product first, ahead of the products that merely share its words."""
    words = search_words.query_words(query)
    required = [(n, word) for n, word in enumerate(words) if not search_words.is_stop_word(word)]
    sku = {"term": {"sku": {"value": query, "case_insensitive": True, "boost": 50}}}
    if required:
        clauses = [_word_query(word, last=n == len(words) - 1) for n, word in required]
    elif words:  # only stop words: as written, in the name
        clauses = [_scored({"match": {"name": word}}, NAME_WORD_SCORE) for word in words]
    else:
        return {"should": [sku], "minimum_should_match": 1}
    text: dict[str, Any] = {"must": clauses}
    if len(words) > 1:
        text["should"] = [_scored({"match_phrase": {"name": query}}, NAME_PHRASE_SCORE)]
    return {"should": [{"bool": text}, sku], "minimum_should_match": 1}


def _search_body(*, query: str, category: str, sort: str, start: int, size: int, active_only: bool) -> dict[str, Any]:
    """The search request, as a plain dict: building it with elasticsearch-dsl objects cost ~0.2 ms per
    search, ~10 % of an uncached search's CPU in the app (bench/README.md); the body is the same."""
    conditions: dict[str, Any] = {"filter": [ACTIVE_ONLY]} if active_only else {}
    if query:
        conditions.update(_text_query(query))
    body: dict[str, Any] = {"query": {"bool": conditions}} if conditions else {}
    if category:
        # A post_filter narrows the hits but not the facet counts, so every category stays visible.
        body["post_filter"] = {"term": {"category": category}}
    body["aggs"] = {"categories": {"terms": {"field": "category", "order": {"_key": "asc"}, "size": 100}}}
    body.update(sort=SORTS[sort], track_total_hits=True)
    body.update({"from": start, "size": size})
    return body


# Control characters (a NUL, a tab...) separate words like spaces; nobody types one to find it.
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]+")


def search_text(query: str) -> str:
    """A query as it is searched for, by the pages and the API alike: control characters are spaces, and
    the ends are trimmed ("%00" is an empty query: every product, on the page and in the API)."""
    return _CONTROL_CHARACTERS.sub(" ", query).strip()


def _search_args(*, query: str, sort: str, page: int, page_size: int) -> tuple[str, str, int, int]:
    """The search's parameters as it runs them: the query as searched for, the sort defaulted, page and
    size clamped."""
    query = search_text(query)
    if sort not in SORTS:
        sort = "relevance" if query else "name"
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(1, min(page, MAX_RESULT_WINDOW // page_size))
    return query, sort, page, page_size


def _search_fingerprint(*parts: object) -> str:
    return sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:32]


_SEARCH_RESPONSE_FIELDS = [
    "hits.total.value",
    "hits.hits._id",
    "hits.hits._source",
    "aggregations.categories.buckets.key",
    "aggregations.categories.buckets.doc_count",
]


def _run_search(
    *, query: str, category: str, sort: str, page: int, page_size: int, include_inactive: bool
) -> ProductPage:
    body = _search_body(
        query=query,
        category=category,
        sort=sort,
        start=(page - 1) * page_size,
        size=page_size,
        active_only=not include_inactive,
    )
    # Run with the plain client: hits become Products straight from their JSON. Only what is used comes
    # back (~20 % fewer bytes to receive and parse; Elasticsearch leaves out an empty list entirely).
    response = es.client().search(index=products_alias(), body=body, filter_path=_SEARCH_RESPONSE_FIELDS)
    hits = response["hits"]
    buckets = response.get("aggregations", {}).get("categories", {}).get("buckets", [])
    return ProductPage(
        items=[_from_source(hit["_id"], hit["_source"]) for hit in hits.get("hits", [])],
        total=hits["total"]["value"],
        page=page,
        page_size=page_size,
        query=query,
        category=category,
        sort=sort,
        facets=[(bucket["key"], bucket["doc_count"]) for bucket in buckets],
    )


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
    query, sort, page, page_size = _search_args(query=query, sort=sort, page=page, page_size=page_size)
    args = {"query": query, "category": category, "sort": sort, "page": page, "page_size": page_size}
    if include_inactive:  # the staff's view: never cached
        return _run_search(**args, include_inactive=True)
    key = catalog_cache.key("search", _search_fingerprint(query, category, sort, page, page_size))
    return _cached(key, lambda: _run_search(**args, include_inactive=False))


def _cached(key: str, build: Callable[[], Any]) -> Any:
    """What is cached under `key`, else `build()`, cached there for catalog_cache.TTL."""
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, catalog_cache.TTL)
    return value


def search_products_rendered(
    render: Callable[[ProductPage], bytes],
    *,
    variant: str,
    query: str = "",
    category: str = "",
    sort: str = "",
    page: int = 1,
    page_size: int = 24,
) -> bytes:
    """`render(search_products(...))`, cached as those bytes under the same catalog version: for an
    output that is the same for every caller with the same `variant` (which names the rendering and
    whatever else it depends on, e.g. the API's JSON for one site address). Caching the output instead
    of the page saves re-serialising it on a hit, and on a miss (most searches: the bench's queries are
    85-90 % first occurrences) the pickling of the page's Products (bench/README.md)."""
    query, sort, page, page_size = _search_args(query=query, sort=sort, page=page, page_size=page_size)
    key = catalog_cache.key("search-rendered", _search_fingerprint(variant, query, category, sort, page, page_size))
    args = {"query": query, "category": category, "sort": sort, "page": page, "page_size": page_size}
    return _cached(key, lambda: render(_run_search(**args, include_inactive=False)))


def category_of(name: str) -> str:
    """The catalog's spelling of the category `name`, matched in any letter case ("books" is "Books"), for
    the shop's list page and the API alike. UnknownCategory, which lists the real ones, if no active
    product has it: an unknown category is not an empty one."""
    categories = [category for category, _ in search_products(page_size=1).facets]
    wanted = name.strip().casefold()
    for category in categories:
        if category.casefold() == wanted:
            return category
    raise UnknownCategory(name=name.strip(), categories=categories)


class Suggestion(NamedTuple):
    """A product the search box offers while the shopper types."""

    id: str
    name: str
    category: str


# The suggestion list under the search box: its longest, and how much must be typed before it shows.
MAX_SUGGESTIONS = 10
SUGGESTIONS_MIN_LENGTH = 2


def suggest_products(*, query: str, limit: int = 6) -> list[Suggestion]:
    """The first `limit` active products the search for `query` lists (best match first), for the
    suggestion list under the search box; none for fewer than SUGGESTIONS_MIN_LENGTH characters. Cached
    like the searches, without the counts and facets a suggestion does not show."""
    query = search_text(query)
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    if len(query) < SUGGESTIONS_MIN_LENGTH:
        return []
    key = catalog_cache.key("suggest", _search_fingerprint(query, limit))
    return _cached(key, lambda: _run_suggest(query=query, limit=limit))  # type: ignore[no-any-return]


def _run_suggest(*, query: str, limit: int) -> list[Suggestion]:
    body = {
        "query": {"bool": {"filter": [ACTIVE_ONLY], **_text_query(query)}},
        "sort": SORTS["relevance"],
        "size": limit,
        "_source": ["name", "category"],
        "track_total_hits": False,
    }
    response = es.client().search(index=products_alias(), body=body, filter_path=["hits.hits._id", "hits.hits._source"])
    return [
        Suggestion(hit["_id"], hit["_source"]["name"], hit["_source"]["category"])
        for hit in response.get("hits", {}).get("hits", [])
    ]


def category_names() -> list[str]:
    """Every category in the catalog, inactive products' included, in order (the staff form's list)."""
    try:
        return [name for name, _ in search_products(page_size=1, include_inactive=True).facets]
    except NotFoundError:  # no product index yet: the first product creates it
        return []


def count_products() -> int:
    client = es.client()
    if not client.indices.exists_alias(name=products_alias()):
        return 0
    return int(client.count(index=products_alias())["count"])
