"""`{{ product.price_cents|money:product.currency }}` -> "$12.50": the one way pages show money."""

from __future__ import annotations

from django import template

from shopcart.money import format_money

register = template.Library()


@register.filter
def money(cents: int, currency: str) -> str:
    return format_money(int(cents), currency)
