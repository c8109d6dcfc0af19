"""cart.domain's one rule for what a line may hold, as adding and setting a quantity refuse it and as the
summary prices it, without Elasticsearch (the services apply it against the real stores in
tests/cart/test_cart_services.py)."""

from __future__ import annotations

import pytest

from cart.domain import Cart, Line, check_line, priced
from cart.errors import CurrencyMismatch, OutOfStock, ProductUnavailable, QuantityOverMaximum
from catalog.selectors import Offer
from shopcart.errors import DomainError

KETTLE = Offer("kettle", "KETTLE", "Kettle", 1250, "USD", 10, True)


def cart_of(*lines: Line, currency: str = "USD") -> Cart:
    return Cart(id="user-1", lines=lines, currency=currency, seq_no=1, primary_term=1)


def line(product_id: str, quantity: int, *, price: int = 1250, currency: str = "USD") -> Line:
    return Line(product_id, product_id.upper(), product_id.title(), price, currency, quantity, "2026-12-01T00:00:00")


@pytest.mark.parametrize(
    ("offer", "cart", "quantity", "current", "error", "message"),
    [
        (None, cart_of(), 1, 0, ProductUnavailable, "not available"),
        (KETTLE._replace(active=False), cart_of(), 1, 0, ProductUnavailable, "no longer sold"),
        (KETTLE._replace(currency="EUR"), cart_of(line("mug", 1)), 1, 0, CurrencyMismatch, "priced in EUR"),
        (KETTLE, cart_of(), 100, 0, QuantityOverMaximum, "at most 99 of “Kettle”"),
        (KETTLE._replace(stock=500), cart_of(), 100, 95, QuantityOverMaximum, "You have 95 already."),
        (KETTLE, cart_of(), 11, 0, OutOfStock, "Only 10 of “Kettle” in stock."),
        (KETTLE, cart_of(), 11, 4, OutOfStock, "(you have 4 in your cart)"),
        (KETTLE._replace(stock=0), cart_of(), 1, 0, OutOfStock, "“Kettle” is out of stock."),
    ],
)
def test_a_line_that_does_not_fit_is_refused_with_the_reason(
    offer: Offer | None, cart: Cart, quantity: int, current: int, error: type[DomainError], message: str
) -> None:
    with pytest.raises(error) as refused:
        check_line(offer=offer, cart=cart, quantity=quantity, current=current, maximum=99)
    assert message in refused.value.message


def test_a_line_that_fits_is_accepted_even_in_a_new_currency_when_it_is_the_carts_only_line() -> None:
    euro_kettle = KETTLE._replace(currency="EUR")
    assert check_line(offer=euro_kettle, cart=cart_of(line("kettle", 2)), quantity=3, current=2, maximum=99)
    assert check_line(offer=KETTLE, cart=cart_of(), quantity=10, current=0, maximum=99) == KETTLE


def test_the_summary_counts_only_what_the_rule_lets_be_bought() -> None:
    offers = {
        "kettle": KETTLE._replace(price_cents=1500),  # re-priced since it was added
        "lamp": Offer("lamp", "LAMP", "Lamp", 900, "USD", 0, True),  # sold out
        "vase": Offer("vase", "VASE", "Vase", 700, "EUR", 5, True),  # now in another currency
    }
    cart = cart_of(line("kettle", 2), line("lamp", 1, price=900), line("vase", 1, price=700), line("gone", 3))
    summary = priced(cart, offers, maximum=99)

    kettle, lamp, vase, gone = summary.lines
    assert (kettle.available, kettle.line_total_cents, kettle.price_changed, kettle.price_went_up) == (
        True,
        3000,
        True,
        True,
    )
    assert (lamp.available, lamp.sold_out, lamp.line_total_cents) == (False, True, 0)
    assert (vase.available, vase.sold_out, vase.unit_price_cents) == (False, False, 700)
    assert (gone.available, gone.name, gone.line_total_cents) == (False, "Gone", 0)
    assert (summary.item_count, summary.line_count, summary.subtotal_cents) == (2, 1, 3000)
