"""`cart_item_count` for the header's mini-cart on every page.

Lazy: the count is only looked up if a template actually prints it. A page that read the cart's
summary already (the cart page) leaves it on the request as `cart_summary`, and the count is taken from
it: one read of the cart per page. Otherwise it reads the cart with a short timeout and reuses the
cached summary, and it never raises: with Elasticsearch or Redis down the page still renders, showing
no count (None).
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from cart import selectors
from cart.owners import cart_id_for_request

logger = logging.getLogger(__name__)


def _count(request: HttpRequest) -> int | None:
    try:
        cart_id = cart_id_for_request(request)
        if cart_id is None:
            return 0
        summary = getattr(request, "cart_summary", None)
        if summary is not None and summary.cart_id == cart_id:
            return int(summary.item_count)
        return selectors.get_item_count(cart_id=cart_id, timeout=settings.CART_COUNT_TIMEOUT)
    except Exception:  # a header badge must never break a page
        logger.warning("mini-cart count unavailable", exc_info=True)
        return None


def new_form_token() -> str:
    """A fresh idempotency token. Given to templates as a callable, so each form that prints
    `{{ cart_form_token }}` gets its own."""
    return uuid.uuid4().hex


def cart_summary(request: HttpRequest) -> dict[str, object]:
    return {
        "cart_item_count": SimpleLazyObject(lambda: _count(request)),
        "cart_form_token": new_form_token,
        # The quantity inputs' upper bound (catalog/_add_to_cart.html, cart/detail.html).
        "max_quantity": settings.CART_MAX_QUANTITY_PER_LINE,
    }
