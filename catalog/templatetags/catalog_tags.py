import secrets
import threading
from collections import OrderedDict
from typing import Any

from django import template
from django.core.signals import setting_changed
from django.http import QueryDict
from django.template.defaulttags import CsrfTokenNode
from django.urls import get_script_prefix, get_urlconf
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

register = template.Library()


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: object) -> str:
    """The current query string with some parameters replaced (pagination, facet and sort links)."""
    # Not GET.copy(), a deep copy: the lists are shared, and only replaced here (a page has ~10 such links).
    params = QueryDict(mutable=True)
    for key, values in context["request"].GET.lists():
        params.setlist(key, values)
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"?{params.urlencode()}" if params else "?"


# -- the product grid, rendered once per set of products ---------------------------------------------------
#
# Rendering 24 product cards through the template engine was most of the product list page's CPU
# (~4 of ~5.7 ms per request in gunicorn, bench/README.md), and the cards are the same for every visitor
# until a product changes. So the grid is rendered once per process for each set of products, with
# placeholders where a card holds something of the request (the CSRF field, each form's own idempotency
# token, the `next` address), and those are filled in per request. The placeholders carry a random
# nonce of this process, so no product text can contain one.
_NONCE = secrets.token_hex(8)
_CSRF = f"\x00{_NONCE}:csrf\x00"
_FORM_TOKEN = f"\x00{_NONCE}:form-token\x00"
_NEXT = f"\x00{_NONCE}:next\x00"
_CSRF_NODE = CsrfTokenNode()
_CSRF_FIELD = _CSRF_NODE.render(template.Context({"csrf_token": _CSRF}))
GRID_TEMPLATE = "catalog/_product_grid.html"
GRID_CACHE_SIZE = 64
_grids: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_grids_lock = threading.Lock()


class _NextPlaceholder:
    """Stands in for the request inside the cached grid: its only use there is `request.get_full_path`."""

    def get_full_path(self) -> str:
        return _NEXT


def _clear_grids(**_: Any) -> None:
    with _grids_lock:
        _grids.clear()


# The grid's key holds what it reads from outside the products; settings are read once per process in
# production, but tests override them (a cached grid must not outlive the settings it was rendered with).
setting_changed.connect(_clear_grids)


def _grid_with_placeholders(context: template.Context, products: list[Any]) -> str:
    max_quantity = context.get("max_quantity")
    # Everything the grid's output depends on: the products (every field: they are frozen dataclasses),
    # how URLs are reversed, the language, escaping, and the one page-wide value the cards print.
    key = (tuple(products), get_script_prefix(), get_urlconf(), get_language(), context.autoescape, max_quantity)
    with _grids_lock:
        html = _grids.get(key)
        if html is not None:
            _grids.move_to_end(key)
            return html
    grid = context.template.engine.get_template(GRID_TEMPLATE)
    values = {
        "products": products,
        "max_quantity": max_quantity,
        "csrf_token": _CSRF,
        "cart_form_token": _FORM_TOKEN,
        "request": _NextPlaceholder(),
    }
    html = grid.render(template.Context(values, autoescape=context.autoescape))
    with _grids_lock:
        _grids[key] = html
        while len(_grids) > GRID_CACHE_SIZE:
            _grids.popitem(last=False)
    return html


@register.simple_tag(takes_context=True)
def product_grid(context: template.Context, products: list[Any]) -> SafeString:
    """The product cards of a listing (catalog/_product_grid.html), each with its add-to-cart form."""
    html = _grid_with_placeholders(context, list(products))
    request = context.get("request")
    html = html.replace(_CSRF_FIELD, _CSRF_NODE.render(context))
    html = html.replace(_NEXT, conditional_escape(request.get_full_path()) if request is not None else "")
    token = context.get("cart_form_token")
    parts = html.split(_FORM_TOKEN)
    filled = [parts[0]]
    for part in parts[1:]:
        # As the template engine prints it: a callable (a fresh token per form) is called.
        filled += [conditional_escape(token() if callable(token) else (token or "")), part]
    return mark_safe("".join(filled))  # noqa: S308 - rendered by the template engine, values escaped above
