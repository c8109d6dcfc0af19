"""Merging a guest cart at log-in: how much of a line moves (cart.domain's one rule, `line_limit`, and
`capped_quantity`), without Elasticsearch. The merge protocol itself is tested against the real services
in tests/cart/test_cart_services.py."""

from __future__ import annotations

import pytest

from cart.domain import capped_quantity, line_limit
from cart.services import MergedLine, MergeResult
from catalog.selectors import Offer


def offer(*, stock: int, currency: str = "USD", active: bool = True) -> Offer:
    return Offer("kettle", "KETTLE", "Kettle", 1250, currency, stock, active)


@pytest.mark.parametrize(
    ("wanted", "maximum", "stock", "expected"),
    [
        (3, 99, 10, (3, "")),  # everything fits
        (10, 99, 10, (10, "")),  # exactly the stock
        (12, 99, 10, (10, "stock")),
        (120, 99, 500, (99, "maximum")),
        (120, 99, 50, (50, "stock")),  # the stock is the tighter cap
        (120, 99, 99, (99, "maximum")),  # both the same: the maximum is what the shopper hits first
        (2, 99, 0, (0, "stock")),
        (2, 99, -3, (0, "stock")),  # oversold stock counts as none
    ],
)
def test_a_merged_line_is_capped_by_stock_and_maximum(
    wanted: int, maximum: int, stock: int, expected: tuple[int, str]
) -> None:
    limit = line_limit(offer=offer(stock=stock), currency="USD", maximum=maximum)
    assert capped_quantity(wanted=wanted, limit=limit) == expected


@pytest.mark.parametrize(
    ("product", "currency"),
    [
        (None, None),  # deleted
        (offer(stock=5, active=False), None),  # no longer sold
        (offer(stock=5, currency="EUR"), "USD"),  # re-priced in another currency than the cart's
    ],
)
def test_nothing_of_an_unavailable_product_moves(product: Offer | None, currency: str | None) -> None:
    limit = line_limit(offer=product, currency=currency, maximum=99)
    assert capped_quantity(wanted=2, limit=limit) == (0, "unavailable")


def test_the_result_counts_what_moved_and_what_was_capped() -> None:
    result = MergeResult(
        lines=[
            MergedLine("kettle", "Kettle", requested=2, added=2),
            MergedLine("lamp", "Lamp", requested=5, added=3, reason="stock"),
            MergedLine("gone", "Gone", requested=1, added=0, reason="unavailable"),
        ]
    )
    assert result.added_items == 5
    assert [line.product_id for line in result.capped] == ["lamp", "gone"]
