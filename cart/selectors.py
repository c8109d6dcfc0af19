"""Reads of the cart: the stored cart (a real-time GET by id, never a search) and its summary.

The summary is cached in Redis under a key that embeds the cart document's `_seq_no`/`_primary_term`
(from the real-time GET), with the catalog version (bumped by every product write) it was priced at;
it is used only while that is still the current version, which is read in the same round trip
(`catalog_version_and_cached`). Any cart change therefore produces a new key, and any product change
retires what was cached under the old version: a stale summary is unreachable by construction, with
no delete-on-write to race against.

Lines whose product was deleted, deactivated or re-priced in another currency are listed as
unavailable (available=False, priced at their add-time price, line total 0) and left out of
itemCount, lineCount and subtotal: they cannot be bought, but the shopper should see what happened
and can remove them. A line whose product has sold out (stock 0) is unavailable in the same way, at
its current price, and says so (`sold_out`) instead of "only 0 left".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.cache import cache
from elasticsearch import NotFoundError

from cart import conf
from cart.documents import carts_alias
from catalog.selectors import catalog_version, catalog_version_and_cached, get_offers
from shopcart import es
from shopcart.money import format_amount, to_decimal


# Lines are named tuples, not frozen dataclasses: a 200-line cart builds 200 of them on every read, and a
# frozen dataclass's __init__ (object.__setattr__ per field) costs five times a tuple's.
class Line(NamedTuple):
    product_id: str
    sku: str
    name: str
    unit_price_cents: int  # at the time the line was added
    currency: str
    quantity: int
    added_at: str

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> Line:
        return cls(
            product_id=str(source["productId"]),
            sku=str(source.get("sku", "")),
            name=str(source.get("name", "")),
            unit_price_cents=int(source.get("unit_price_cents", 0)),
            currency=str(source.get("currency", "")),
            quantity=int(source.get("quantity", 0)),
            added_at=str(source.get("added_at", "")),
        )

    def to_source(self) -> dict[str, Any]:
        return {
            "productId": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "unit_price_cents": self.unit_price_cents,
            "currency": self.currency,
            "quantity": self.quantity,
            "added_at": self.added_at,
        }


@dataclass(frozen=True, eq=False)
class Cart:
    """A cart as stored, with the concurrency token of the version that was read.
    `exists` is False for a cart never written (seq_no and primary_term are None then). `replayed`: a
    write service's answer to a request whose Idempotency-Key was applied before (nothing written now)."""

    id: str
    lines: tuple[Line, ...]
    currency: str
    seq_no: int | None
    primary_term: int | None
    source: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @property
    def exists(self) -> bool:
        return self.seq_no is not None

    def line(self, product_id: str) -> Line | None:
        return next((line for line in self.lines if line.product_id == product_id), None)

    @property
    def raw_item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def _from_response(cart_id: str, response: dict[str, Any]) -> Cart:
    source = response["_source"]
    return Cart(
        id=cart_id,
        lines=tuple(Line.from_source(line) for line in source.get("lines") or []),
        currency=source.get("currency") or conf.default_currency(),
        seq_no=int(response["_seq_no"]),
        primary_term=int(response["_primary_term"]),
        source=source,
    )


def get_cart(*, cart_id: str, timeout: float | None = None) -> Cart:
    """The cart as stored now (real-time GET: it sees every acknowledged write, refresh or not).
    A cart that was never written, or whose index does not exist yet, is an empty cart."""
    client = es.client()
    if timeout is not None:
        client = client.options(request_timeout=timeout, max_retries=0)
    try:
        response = client.get(index=carts_alias(), id=cart_id, realtime=True)
    except NotFoundError:  # no such document, or no index yet
        return Cart(id=cart_id, lines=(), currency=conf.default_currency(), seq_no=None, primary_term=None)
    return _from_response(cart_id, dict(response))


class SummaryLine(NamedTuple):
    product_id: str
    sku: str
    name: str
    unit_price_cents: int  # current catalog price (the add-time price when unavailable)
    added_unit_price_cents: int
    quantity: int
    line_total_cents: int
    price_changed: bool
    available: bool
    # Current stock, so a page can say "only 2 left" when stock fell below the quantity after adding.
    stock: int | None
    added_at: str

    @property
    def unit_price(self) -> Decimal:
        return to_decimal(self.unit_price_cents)

    @property
    def added_unit_price(self) -> Decimal:
        return to_decimal(self.added_unit_price_cents)

    @property
    def line_total(self) -> Decimal:
        return to_decimal(self.line_total_cents)

    @property
    def exceeds_stock(self) -> bool:
        return self.available and self.stock is not None and self.quantity > self.stock

    @property
    def sold_out(self) -> bool:
        """Still sold, but none left: not counted, and the page says "out of stock", not "only 0 left"."""
        return not self.available and self.stock == 0

    @property
    def price_went_up(self) -> bool:
        return self.price_changed and self.unit_price_cents > self.added_unit_price_cents

    @property
    def price_change_cents(self) -> int:
        """By how much the unit price moved since the line was added, up or down."""
        return abs(self.unit_price_cents - self.added_unit_price_cents) if self.price_changed else 0


@dataclass(frozen=True)
class CartSummary:
    cart_id: str | None
    lines: tuple[SummaryLine, ...]
    item_count: int
    line_count: int
    subtotal_cents: int
    currency: str

    @property
    def subtotal(self) -> Decimal:
        return to_decimal(self.subtotal_cents)

    @property
    def is_empty(self) -> bool:
        return not self.lines

    def as_api(self) -> dict[str, Any]:
        """The API representation: money as decimal strings like "12.50"."""
        return {
            "lines": [
                {
                    "productId": line.product_id,
                    "sku": line.sku,
                    "name": line.name,
                    "unitPrice": format_amount(line.unit_price_cents),
                    "addedUnitPrice": format_amount(line.added_unit_price_cents),
                    "quantity": line.quantity,
                    "lineTotal": format_amount(line.line_total_cents),
                    "priceChanged": line.price_changed,
                    "available": line.available,
                }
                for line in self.lines
            ],
            "itemCount": self.item_count,
            "lineCount": self.line_count,
            "subtotal": format_amount(self.subtotal_cents),
            "currency": self.currency,
        }


def empty_summary(*, cart_id: str | None = None) -> CartSummary:
    return CartSummary(
        cart_id=cart_id, lines=(), item_count=0, line_count=0, subtotal_cents=0, currency=conf.default_currency()
    )


# Part of the key: bump it whenever what is cached (the catalog version and the pickled CartSummary)
# changes shape, so replicas running the new code never unpickle what older ones cached (during a
# rolling deploy both share one Redis).
SUMMARY_FORMAT = 4


def summary_key(cart: Cart) -> str:
    return f"cart:summary:f{SUMMARY_FORMAT}:{cart.id}:{cart.primary_term}:{cart.seq_no}"


def summarize(*, cart: Cart, lookup: bool = True) -> CartSummary:
    """The summary of this version of the cart, priced with the current catalog (cached).
    `lookup=False` for a version just written: nothing has had the time to cache it, so the lookup
    would only cost a round trip (the result is the same either way; it is still cached)."""
    if not cart.lines:
        return empty_summary(cart_id=cart.id)
    # The version is read before the products: a price change finishing after this read bumps the
    # version past it, so a summary cached with this version is never older than it claims.
    key = summary_key(cart)
    version, cached = catalog_version_and_cached(key) if lookup else (catalog_version(), None)
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == version and isinstance(cached[1], CartSummary):
        return cached[1]

    # Read after the version: a product write bumps its offers' version before the catalog version.
    products = get_offers(product_ids=[line.product_id for line in cart.lines])
    lines = []
    for line in cart.lines:
        product = products.get(line.product_id)
        sold = product is not None and product.active and product.currency == cart.currency
        if sold:
            assert product is not None
            unit = product.price_cents
            in_stock = product.stock > 0
            lines.append(
                SummaryLine(
                    product_id=line.product_id,
                    sku=product.sku,
                    name=product.name,
                    unit_price_cents=unit,
                    added_unit_price_cents=line.unit_price_cents,
                    quantity=line.quantity,
                    line_total_cents=unit * line.quantity if in_stock else 0,
                    price_changed=unit != line.unit_price_cents,
                    available=in_stock,
                    stock=product.stock,
                    added_at=line.added_at,
                )
            )
        else:
            lines.append(_as_recorded(line, available=False))
    summary = _summary_of(cart, lines)
    cache.set(key, (version, summary), conf.summary_ttl())
    return summary


def _as_recorded(line: Line, *, available: bool) -> SummaryLine:
    """A line at the name and price it was added with; an unavailable one counts for nothing."""
    return SummaryLine(
        product_id=line.product_id,
        sku=line.sku,
        name=line.name,
        unit_price_cents=line.unit_price_cents,
        added_unit_price_cents=line.unit_price_cents,
        quantity=line.quantity,
        line_total_cents=line.unit_price_cents * line.quantity if available else 0,
        price_changed=False,
        available=available,
        stock=None,
        added_at=line.added_at,
    )


def _summary_of(cart: Cart, lines: list[SummaryLine]) -> CartSummary:
    """The totals count available lines only."""
    buyable = [line for line in lines if line.available]
    return CartSummary(
        cart_id=cart.id,
        lines=tuple(lines),
        item_count=sum(line.quantity for line in buyable),
        line_count=len(buyable),
        subtotal_cents=sum(line.line_total_cents for line in buyable),
        currency=cart.currency,
    )


def summarize_as_recorded(*, cart: Cart) -> CartSummary:
    """The summary of this version of the cart from its own lines alone, each at the price it was added
    at: no catalog and no cache. Only for answering a write Elasticsearch has already acknowledged when
    the current prices cannot be read at that moment (a service just went down): the client must hear
    that its change was applied, not get a 503 saying nothing changed, which it would retry."""
    return _summary_of(cart, [_as_recorded(line, available=True) for line in cart.lines])


def get_summary(*, cart_id: str | None) -> CartSummary:
    """The current summary of a cart (None: the visitor has no cart yet)."""
    if cart_id is None:
        return empty_summary()
    return summarize(cart=get_cart(cart_id=cart_id))


def get_item_count(*, cart_id: str | None, timeout: float | None = None) -> int:
    """The number of items (sum of buyable quantities) for the header's mini-cart."""
    if cart_id is None:
        return 0
    cart = get_cart(cart_id=cart_id, timeout=timeout)
    if not cart.lines:
        return 0
    return summarize(cart=cart).item_count
