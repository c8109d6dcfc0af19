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

from catalog import images
from catalog.selectors import ProductPage

register = template.Library()


@register.simple_tag
def generated_picture(product_id: str) -> str:
    """The address of a product's generated picture, whatever else it has: the fallback of a picture that
    fails to load (the cart's lines know only the product's id)."""
    return images.generated_fallback_path(product_id)


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


# -- the product grid and the listing, rendered once per set of products -----------------------------------
#
# Rendering 24 product cards through the template engine was most of the product list page's CPU
# (~4 of ~5.7 ms per request in gunicorn, bench/README.md), and the cards are the same for every visitor
# until a product changes. So the grid is rendered once per process for each set of products, with
# placeholders where a card holds something of the request (the CSRF field, each form's own idempotency
# token, the `next` address), and those are filled in per request. The placeholders carry a random
# nonce of this process, so no product text can contain one. The rest of the list page's content (facet
# links, sort form, pagination: ~1/3 of what remained) is the same for every visitor with the same
# search result and query string, so the whole listing is kept the same way (`product_listing`).
_NONCE = secrets.token_hex(8)
_CSRF = f"\x00{_NONCE}:csrf\x00"
_FORM_TOKEN = f"\x00{_NONCE}:form-token\x00"
_NEXT = f"\x00{_NONCE}:next\x00"
_CSRF_NODE = CsrfTokenNode()
_CSRF_FIELD = _CSRF_NODE.render(template.Context({"csrf_token": _CSRF}))
GRID_TEMPLATE = "catalog/_product_grid.html"
LISTING_TEMPLATE = "catalog/_product_listing.html"
# Grids and listings together (a listing holds its grid, so the grid is only rendered again for a listing
# of the same products under another query string).
RENDERED_CACHE_SIZE = 128
_rendered: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_rendered_lock = threading.Lock()


class _RequestPlaceholder:
    """Stands in for the request in a cached rendering: the grid reads `request.get_full_path` (filled in
    per request), the listing's links `request.GET` (part of the listing's key)."""

    def __init__(self, get: QueryDict | None = None) -> None:
        self.GET = get if get is not None else QueryDict()

    def get_full_path(self) -> str:
        return _NEXT


def _clear_rendered(**_: Any) -> None:
    with _rendered_lock:
        _rendered.clear()


# The keys hold what a rendering reads from outside its arguments; settings are read once per process in
# production, but tests override them (a cached rendering must not outlive the settings it was made with).
setting_changed.connect(_clear_rendered)


def _with_placeholders(
    context: template.Context, template_name: str, key: tuple[Any, ...], values: dict[str, Any], get: QueryDict | None
) -> str:
    """`template_name` rendered with `values` and the placeholders, once per `key` (plus what every
    rendering depends on: how URLs are reversed, the language, escaping, and the page-wide `max_quantity`
    the cards print)."""
    max_quantity = context.get("max_quantity")
    key = (template_name, *key, get_script_prefix(), get_urlconf(), get_language(), context.autoescape, max_quantity)
    with _rendered_lock:
        html = _rendered.get(key)
        if html is not None:
            _rendered.move_to_end(key)
            return html
    values |= {
        "max_quantity": max_quantity,
        "csrf_token": _CSRF,
        "cart_form_token": _FORM_TOKEN,
        "request": _RequestPlaceholder(get),
    }
    html = context.template.engine.get_template(template_name).render(
        template.Context(values, autoescape=context.autoescape)
    )
    with _rendered_lock:
        _rendered[key] = html
        while len(_rendered) > RENDERED_CACHE_SIZE:
            _rendered.popitem(last=False)
    return html


def _fill(context: template.Context, html: str) -> SafeString:
    """The placeholders of a cached rendering replaced by this request's values. (Inside a cached
    rendering, whose context holds the placeholders themselves, this leaves them as they are.)"""
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


@register.simple_tag(takes_context=True)
def product_grid(context: template.Context, products: list[Any]) -> SafeString:
    """The product cards of a listing (catalog/_product_grid.html), each with its add-to-cart form."""
    products = list(products)
    # Keyed by the products themselves, every field (they are frozen dataclasses).
    html = _with_placeholders(context, GRID_TEMPLATE, (tuple(products),), {"products": products}, None)
    return _fill(context, html)


@register.simple_tag(takes_context=True)
def product_listing(
    context: template.Context, page: ProductPage, notes: list[str], sort_labels: dict[str, str]
) -> SafeString:
    """The product list page's content (catalog/_product_listing.html): heading, facets, sort form, the
    product grid and the pagination."""
    request = context.get("request")
    get = request.GET if request is not None else QueryDict()
    key = (
        tuple(page.items),
        page.total,
        page.page,
        page.page_size,
        page.query,
        page.category,
        page.sort,
        tuple(page.facets),
        tuple(notes),
        tuple(sort_labels.items()),
        tuple((name, tuple(values)) for name, values in get.lists()),
    )
    values = {"page": page, "notes": notes, "sort_labels": sort_labels}
    return _fill(context, _with_placeholders(context, LISTING_TEMPLATE, key, values, get))
