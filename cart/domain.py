"""What a cart is (`Cart`, `Line`), what its summary says (`CartSummary`, `SummaryLine`), and the one
rule for how many of a product a line may hold (`line_limit`), which adding, setting a quantity,
merging a guest cart and pricing the summary all apply to the product's offer
(catalog.selectors.get_offers). Pure: the selectors and services read and write; this decides, and
imports nothing that does I/O (tests/unit/test_domain_purity.py).

A line whose product was deleted, deactivated or re-priced in another currency is unavailable: listed
at its add-time price with a line total of 0 and left out of itemCount, lineCount and subtotal (it
cannot be bought, but the shopper should see what happened and can remove it). A line whose product
has sold out (stock 0) is unavailable in the same way, at its current price, and says so (`sold_out`)
instead of "only 0 left".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from cart.errors import CurrencyMismatch, OutOfStock, ProductUnavailable, QuantityOverMaximum
from shopcart.money import to_decimal

if TYPE_CHECKING:  # a type only: importing catalog.selectors would load the cache and Elasticsearch clients
    from catalog.selectors import Offer

MAX_PRODUCT_ID_LENGTH = 100


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

    @classmethod
    def of_offer(cls, offer: Offer, *, quantity: int, added_at: str) -> Line:
        """A new line: the product as it is sold now, at today's price."""
        return cls(offer.id, offer.sku, offer.name, offer.price_cents, offer.currency, quantity, added_at)

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
    """A cart as stored, with the concurrency token of the version that was read: `seq_no` and
    `primary_term` in the physical `index` that holds it (they mean nothing in another index, so a write
    conditional on them names that index). `exists` is False for a cart never written (seq_no and
    primary_term are None then). `replayed`: a write service's answer to a request whose Idempotency-Key
    was applied before (nothing written now). `removed`: the lines the write that made this version took
    out (what a page names after a removal)."""

    id: str
    lines: tuple[Line, ...]
    currency: str
    seq_no: int | None
    primary_term: int | None
    source: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False
    index: str | None = None
    removed: tuple[Line, ...] = ()

    @property
    def exists(self) -> bool:
        return self.seq_no is not None

    @property
    def version(self) -> tuple[int | None, int | None, str | None]:
        """What a conditional write is conditional on, and where."""
        return self.seq_no, self.primary_term, self.index

    def line(self, product_id: str) -> Line | None:
        return next((line for line in self.lines if line.product_id == product_id), None)

    @property
    def raw_item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def currency_for(self, product_id: str) -> str | None:
        """The currency a line of `product_id` must be priced in: the cart's, if it holds other lines
        (a cart holds one currency); None (any) if that line would be its only one."""
        return self.currency if any(line.product_id != product_id for line in self.lines) else None


# -- the one rule ----------------------------------------------------------------------------------------

UNAVAILABLE = "unavailable"
STOCK = "stock"
MAXIMUM = "maximum"


def line_limit(*, offer: Offer | None, currency: str | None, maximum: int) -> tuple[int, str]:
    """How many of a product one line of a cart in `currency` (None: any) may hold, and what sets
    that limit: UNAVAILABLE (0: no such product, no longer sold, or priced in another currency), STOCK
    (what is left; oversold stock counts as none) or MAXIMUM (CART_MAX_QUANTITY_PER_LINE). When stock and
    maximum are equal, the maximum is what the shopper hits first."""
    if offer is None or not offer.active or (currency is not None and offer.currency != currency):
        return 0, UNAVAILABLE
    stock = max(offer.stock, 0)
    return (stock, STOCK) if stock < maximum else (maximum, MAXIMUM)


def sold(offer: Offer | None) -> Offer:
    """The offer, if the product exists and is sold (whatever the cart); else ProductUnavailable."""
    if offer is None or not offer.active:
        raise ProductUnavailable("This product is not available (it does not exist or is no longer sold).")
    return offer


def check_line(*, offer: Offer | None, cart: Cart, quantity: int, current: int, maximum: int) -> Offer:
    """Refuse, with the domain error that says why, a line of `quantity` of this offer in `cart`
    (`current`: what the shopper already has, named in the message). Returns the offer when it fits."""
    offer = sold(offer)
    limit, reason = line_limit(offer=offer, currency=cart.currency_for(offer.id), maximum=maximum)
    if reason == UNAVAILABLE:
        raise CurrencyMismatch(
            f"“{offer.name}” is priced in {offer.currency}, and your cart holds {cart.currency} items only. "
            "Empty your cart first to buy it."
        )
    if quantity > maximum:  # named first: a shopper over the maximum is told that, whatever the stock
        already = f" You have {current} already." if current else ""
        raise QuantityOverMaximum(
            f"You can have at most {maximum} of “{offer.name}” in your cart.{already}", maximum=maximum
        )
    if quantity <= limit:
        return offer
    if limit == 0:
        raise OutOfStock(f"“{offer.name}” is out of stock.", available=0)
    already = f" (you have {current} in your cart)" if current else ""
    raise OutOfStock(f"Only {limit} of “{offer.name}” in stock{already}.", available=limit)


def capped_quantity(*, wanted: int, limit: tuple[int, str]) -> tuple[int, str]:
    """A merged line's quantity: what both carts hold together, capped by the line's `line_limit`;
    with why it is less ("" if it is not)."""
    most, reason = limit
    return (wanted, "") if wanted <= most else (most, reason)


# -- the summary ---------------------------------------------------------------------------------------


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


def empty_summary(*, cart_id: str | None, currency: str) -> CartSummary:
    return CartSummary(cart_id=cart_id, lines=(), item_count=0, line_count=0, subtotal_cents=0, currency=currency)


def priced(cart: Cart, offers: dict[str, Offer], *, maximum: int) -> CartSummary:
    """The summary of `cart` with its products' current offers, by the one rule: a line the rule gives
    nothing is unavailable (at its add-time price, or at today's when only the stock is gone)."""
    lines = []
    for line in cart.lines:
        offer = offers.get(line.product_id)
        limit, reason = line_limit(offer=offer, currency=cart.currency, maximum=maximum)
        if offer is None or reason == UNAVAILABLE:
            lines.append(_as_recorded(line, available=False))
            continue
        unit = offer.price_cents
        lines.append(
            SummaryLine(
                product_id=line.product_id,
                sku=offer.sku,
                name=offer.name,
                unit_price_cents=unit,
                added_unit_price_cents=line.unit_price_cents,
                quantity=line.quantity,
                line_total_cents=unit * line.quantity if limit else 0,
                price_changed=unit != line.unit_price_cents,
                available=limit > 0,
                stock=offer.stock,
                added_at=line.added_at,
            )
        )
    return _summary_of(cart, lines)


def as_recorded(cart: Cart) -> CartSummary:
    """The summary of `cart` from its own lines alone, each at the price it was added at."""
    return _summary_of(cart, [_as_recorded(line, available=True) for line in cart.lines])


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
