"""Reads of the cart: the stored cart (a real-time GET by id, never a search) and its summary.

The summary is cached in Redis under a key that embeds the cart document's `_seq_no`/`_primary_term`
and physical index (from the real-time GET), with the catalog version (bumped by every product write) it was priced at;
it is used only while that is still the current version, which is read in the same round trip
(`catalog_version_and_entry`). Any cart change therefore produces a new key, and any product change
retires what was cached under the old version: a stale summary is unreachable by construction, with
no delete-on-write to race against. What the summary says of each line is cart.domain's.
"""

from __future__ import annotations

import pickle

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from elasticsearch import NotFoundError

from cart import versions
from cart.documents import cart_from_document, carts_alias, missing_cart
from cart.domain import Cart, CartSummary, empty_summary, priced
from catalog.selectors import catalog_version, catalog_version_and_entry, get_offers
from shopcart import es


def read_cart(*, cart_id: str, timeout: float | None = None) -> Cart:
    """The cart as stored now (real-time GET: it sees every acknowledged write, refresh or not), with the
    physical index of its version. A cart that was never written, or whose index does not exist yet, is
    an empty cart."""
    client = es.client() if timeout is None else es.client_with(request_timeout=timeout, max_retries=0)
    try:
        response = client.get(index=carts_alias(), id=cart_id, realtime=True)
    except NotFoundError:  # no such document, or no index yet
        return missing_cart(cart_id)
    return cart_from_document(
        cart_id,
        response["_source"],
        seq_no=int(response["_seq_no"]),
        primary_term=int(response["_primary_term"]),
        index=str(response["_index"]),
    )


def get_cart(*, cart_id: str, timeout: float | None = None) -> Cart:
    """The cart as stored now (`read_cart`), kept as its last known version for the next write, whichever
    replica makes it (cart.versions)."""
    cart = read_cart(cart_id=cart_id, timeout=timeout)
    versions.remember(cart)
    return cart


def no_summary(*, cart_id: str | None = None) -> CartSummary:
    """The summary of a cart that has no lines (or does not exist yet)."""
    return empty_summary(cart_id=cart_id, currency=settings.CART_DEFAULT_CURRENCY)


# Part of the key: bump it whenever what is cached (the catalog version and the pickled CartSummary)
# changes shape, so replicas running the new code never unpickle what older ones cached (during a
# rolling deploy both share one Redis).
SUMMARY_FORMAT = 7


def summary_key(cart: Cart) -> str:
    # The physical index too: a version's numbers mean nothing in another index (after cart_reindex).
    return f"cart:summary:f{SUMMARY_FORMAT}:{cart.id}:{cart.index}:{cart.primary_term}:{cart.seq_no}"


def summarize(*, cart: Cart, lookup: bool = True, remember: bool = False) -> CartSummary:
    """The summary of this version of the cart, priced with the current catalog (cached).
    `lookup=False` for a version just written: nothing has had the time to cache it, so the lookup
    would only cost a round trip (the result is the same either way; it is still cached).
    `remember`: `cart` is a real-time read, to be kept as the cart's last known version (cart.versions),
    in the round trip that caches the summary; a cached summary of this version says it was kept already
    (by the write or the read that cached it), so a cached read costs nothing more."""
    if not cart.lines:
        return no_summary(cart_id=cart.id)
    # The version is read before the products: a price change finishing after this read bumps the
    # version past it, so a summary cached with this version is never older than it claims.
    key = summary_key(cart)
    version, entry = catalog_version_and_entry(key) if lookup else (catalog_version(), None)
    cached = _from_entry(entry, version=version)
    if cached is not None:
        return cached

    # Read after the version: a product write bumps its offers' version before the catalog version.
    offers = get_offers(product_ids=[line.product_id for line in cart.lines])
    summary = priced(cart, offers, maximum=settings.CART_MAX_QUANTITY_PER_LINE)
    store_summary(key, summary, version=version, remembering=cart if remember else None)
    return summary


# An entry is the catalog version it was priced at, a newline, then the pickled summary: a summary of an
# older version (every product edit makes every cart's entry one) is recognised by its first bytes,
# without unpickling 200 lines to throw them away (~1.4 ms for a 200-line cart, bench/README.md).
def store_summary(key: str, summary: CartSummary, *, version: int, remembering: Cart | None = None) -> None:
    """Cache a summary (and keep `remembering` as its cart's last known version, in the same round trip)."""
    entry = b"%d\n" % version + pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL)
    pipeline = get_redis_connection("default").pipeline(transaction=False)
    pipeline.set(cache.make_key(key), entry, ex=settings.CART_SUMMARY_CACHE_TTL)
    if remembering is not None:
        versions.remember_in(pipeline, remembering)
    pipeline.execute()


def _from_entry(entry: bytes | None, *, version: int) -> CartSummary | None:
    if entry is None:
        return None
    head, newline, body = entry.partition(b"\n")
    if not newline or head != b"%d" % version:
        return None
    summary = pickle.loads(body)  # noqa: S301 - our own Redis, written by store_summary
    return summary if isinstance(summary, CartSummary) else None


def get_summary(*, cart_id: str | None) -> CartSummary:
    """The current summary of a cart (None: the visitor has no cart yet)."""
    if cart_id is None:
        return no_summary()
    return summarize(cart=read_cart(cart_id=cart_id), remember=True)


def get_item_count(*, cart_id: str | None, timeout: float | None = None) -> int:
    """The number of items (sum of buyable quantities) for the header's mini-cart."""
    if cart_id is None:
        return 0
    cart = read_cart(cart_id=cart_id, timeout=timeout)
    if not cart.lines:
        return 0
    return summarize(cart=cart, remember=True).item_count
