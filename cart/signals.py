"""Merging an anonymous shopper's cart into their own cart when they log in; deleting a deleted
user's cart."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import ngettext

from cart import services
from cart.owners import SESSION_KEY, anonymous_cart_id, session_anon_id, user_cart_id

logger = logging.getLogger(__name__)


def moved_items_message(count: int) -> str:
    """What a shopper is told when their guest cart joined their own cart (at log-in or just after)."""
    return ngettext(
        "We moved %(count)d item from your guest cart into your cart.",
        "We moved %(count)d items from your guest cart into your cart.",
        count,
    ) % {"count": count}


def merge_cart_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Django keeps the session data across log-in (only its key changes), so the anonymous cart id
    is still there. A failed merge never fails the log-in: the id stays in the session and the next
    cart page finishes the merge (cart.views.finish_pending_merge)."""
    if request is None or not hasattr(request, "session"):
        return
    anon_id = session_anon_id(request)
    if anon_id is None:
        return
    try:
        result = services.merge_anonymous_cart(anon_cart_id=anonymous_cart_id(anon_id), user_id=user.pk)
    except Exception:  # never block a log-in on the cart
        logger.warning("merging the anonymous cart at log-in of user %s failed; will retry", user.pk, exc_info=True)
        return
    request.session.pop(SESSION_KEY, None)
    if result.added_items:
        messages.info(request, moved_items_message(result.added_items), fail_silently=True)
    for line in result.capped:
        why = {
            "stock": "because of the stock left",
            "maximum": "to the per-product maximum",
            "unavailable": "because it is no longer available",
        }.get(line.reason, "")
        messages.warning(
            request,
            f"“{line.name}”: only {line.added} of the {line.requested} in your guest cart moved to your cart ({why}).",
            fail_silently=True,
        )


def delete_cart_of_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted account's cart goes too (after the commit: a rolled-back deletion keeps it), so no
    later account could ever inherit it, whatever the database does with ids."""
    cart_id = user_cart_id(instance.pk)

    def delete() -> None:
        try:
            services.delete_cart(cart_id=cart_id)
        except Exception:  # the account is gone either way; an operator can delete the document
            logger.warning("could not delete cart %s of a deleted user", cart_id, exc_info=True)

    transaction.on_commit(delete)
