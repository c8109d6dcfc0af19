"""Merging a guest cart at log-in: how much of a line moves (cart.services.merged_quantity), without
Elasticsearch. The merge protocol itself is tested against the real services in tests/cart/test_cart_services.py."""

from __future__ import annotations

import pytest

from cart.services import MergedLine, MergeResult, merged_quantity


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
    assert merged_quantity(wanted=wanted, maximum=maximum, stock=stock) == expected


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
