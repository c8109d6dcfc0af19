"""`{% site_urls as nav_urls %}`: the addresses the header links to (templates/partials/nav.html)."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch

from shopcart.reversing import reverse_once

register = template.Library()

NAV_URLS = {
    "login": "accounts:login",
    "signup": "accounts:signup",
    "logout": "accounts:logout",
    "account": "accounts:account",
    "cart": "cart:detail",
    "search": "catalog:search",
    "suggestions": "api:suggestions",
}


def _reverse_or_empty(name: str) -> str:
    try:
        return reverse_once(name)
    except NoReverseMatch:  # as {% url ... as var %} does: a URLconf without that page gets no link
        return ""


@register.simple_tag
def site_urls() -> dict[str, str]:
    return {name: _reverse_or_empty(view) for name, view in NAV_URLS.items()}
