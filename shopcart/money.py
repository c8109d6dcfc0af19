"""Money is integer minor units (cents) everywhere inside; Decimal at the edges; never float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENTS = Decimal("0.01")


def to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) * CENTS).quantize(CENTS)


def to_cents(amount: Decimal | str) -> int:
    """Exact conversion; raises ValueError for more than two decimal places or a non-number."""
    error = ValueError(f"{amount!r} is not an amount with at most two decimal places")
    try:
        value = Decimal(str(amount))
        cents = value.quantize(CENTS)
    except InvalidOperation as exc:
        raise error from exc
    if not value.is_finite() or cents != value:
        raise error
    return int(cents / CENTS)


def format_amount(cents: int) -> str:
    """`1250` -> `"12.50"`, the API's representation of money."""
    return str(to_decimal(cents))


# The shop's currencies as an English-language page writes them: the symbol before the amount.
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
# The currencies a product may be priced in (catalog) and a cart may default to (shopcart.checks).
CURRENCIES = tuple(CURRENCY_SYMBOLS)


def format_money(cents: int, currency: str) -> str:
    """`1038798, "USD"` -> `"$10,387.98"`: money for people to read (pages, messages), grouped in
    thousands, with the currency's symbol; a currency without one is written before the amount by
    its code (`"CHF 5.00"`). Negative amounts get a leading minus (`"-$1.50"`). The API keeps
    `format_amount`'s exact decimal strings."""
    sign = "-" if cents < 0 else ""
    amount = f"{to_decimal(abs(cents)):,}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{currency} {amount}"
