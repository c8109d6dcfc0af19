"""Merging an anonymous shopper's cart into their own cart when they log in; deleting a deleted
user's cart."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from cart import services
from cart.guest_merge import merge_guest_cart
from cart.owners import user_cart_id

logger = logging.getLogger(__name__)


def merge_cart_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Django keeps the session data across log-in (only its key changes), so the guest cart id is
    still there. A failed merge never fails the log-in (cart.guest_merge)."""
    if request is None or not hasattr(request, "session"):
        return
    merge_guest_cart(request, user=user)


def delete_cart_of_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted account's cart goes too, with a `cleared` event for its lines like any emptying (after
    the commit: a rolled-back deletion keeps it), so no later account could ever inherit it, whatever the
    database does with ids. The account page and API delete the cart first themselves (and refuse while
    they cannot); this catches every other deletion (the admin, a shell) and a cart written meanwhile."""
    user_id = instance.pk

    def delete() -> None:
        try:
            services.delete_user_cart(user_id=user_id)
        except Exception:  # the account is gone either way; an operator can delete the document
            logger.warning("could not delete cart %s of a deleted user", user_cart_id(user_id), exc_info=True)

    transaction.on_commit(delete)
