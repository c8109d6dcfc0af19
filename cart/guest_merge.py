"""The one guest-cart merge of the pages: a shopper's guest cart joins their own cart at log-in
(cart.signals) or, if that failed, on their next cart page (cart.views). Same service, same messages."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import ngettext

from cart import services
from cart.owners import SESSION_KEY, anonymous_cart_id, session_anon_id

logger = logging.getLogger(__name__)

# Why less than the guest cart held moved (services.MergedLine.reason).
_CAPPED_BECAUSE = {
    "stock": "because of the stock left",
    "maximum": "to the per-product maximum",
    "unavailable": "because it is no longer available",
}


def moved_items_message(count: int) -> str:
    """What a shopper is told when their guest cart joined their own cart (at log-in or just after)."""
    return ngettext(
        "We moved %(count)d item from your guest cart into your cart.",
        "We moved %(count)d items from your guest cart into your cart.",
        count,
    ) % {"count": count}


def merge_guest_cart(request: HttpRequest, *, user: Any) -> None:
    """Merge the guest cart the session names into `user`'s cart, and say what moved. Best effort: a
    failure never fails the log-in or the page; the id stays in the session and the next cart page
    tries again."""
    anon_id = session_anon_id(request)
    if anon_id is None:
        return
    try:
        result = services.merge_anonymous_cart(anon_cart_id=anonymous_cart_id(anon_id), user_id=user.pk)
    except Exception:
        logger.warning("merging the guest cart of user %s failed; will retry", user.pk, exc_info=True)
        return
    request.session.pop(SESSION_KEY, None)
    if result.added_items:
        messages.info(request, moved_items_message(result.added_items), fail_silently=True)
    for line in result.capped:
        why = _CAPPED_BECAUSE.get(line.reason, "")
        messages.warning(
            request,
            f"“{line.name}”: only {line.added} of the {line.requested} in your guest cart moved to your cart ({why}).",
            fail_silently=True,
        )
