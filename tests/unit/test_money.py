"""How pages write money (shopcart.money.format_money and its template filter); the API's exact strings."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from shopcart.money import format_amount, format_money


@pytest.mark.parametrize(
    ("cents", "currency", "expected"),
    [
        (1038798, "USD", "$10,387.98"),
        (0, "USD", "$0.00"),
        (5, "EUR", "€0.05"),
        (100_000_000, "GBP", "£1,000,000.00"),
        (-150, "USD", "-$1.50"),
        (1250, "CHF", "CHF 12.50"),
    ],
)
def test_format_money(cents: int, currency: str, expected: str) -> None:
    assert format_money(cents, currency) == expected


def test_the_template_filter_is_the_helper() -> None:
    rendered = Template("{% load money_tags %}{{ cents|money:currency }}").render(
        Context({"cents": 1038798, "currency": "USD"})
    )
    assert rendered == "$10,387.98"


def test_the_api_keeps_exact_decimal_strings() -> None:
    assert format_amount(1038798) == "10387.98"
