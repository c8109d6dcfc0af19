"""`{% site_urls as nav_urls %}`: the addresses the header links to (templates/partials/nav.html)."""

from __future__ import annotations

import threading
from typing import Any

from django import template
from django.core.signals import setting_changed
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

register = template.Library()

NAV_URLS = {
    "login": "accounts:login",
    "signup": "accounts:signup",
    "logout": "accounts:logout",
    "password_change": "accounts:password_change",
    "cart": "cart:detail",
    "search": "catalog:search",
}
# reverse() costs ~25 us a call (resolver lookups through thread-locals), and every page's header had six:
# reversed once per URL configuration instead.
_urls: dict[tuple[str, Any], dict[str, str]] = {}
_urls_lock = threading.Lock()


def _forget(**_: Any) -> None:
    with _urls_lock:
        _urls.clear()


setting_changed.connect(_forget)  # ROOT_URLCONF overridden in a test, say


def _reverse_or_empty(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:  # as {% url ... as var %} does: a URLconf without that page gets no link
        return ""


@register.simple_tag
def site_urls() -> dict[str, str]:
    key = (get_script_prefix(), get_urlconf())
    urls = _urls.get(key)
    if urls is None:
        urls = {name: _reverse_or_empty(view) for name, view in NAV_URLS.items()}
        with _urls_lock:
            _urls[key] = urls
    return urls
