"""Writes to carts: the app's public write API (keyword-only arguments; refusals are domain errors,
cart.errors). Other apps and the cart's own views and API use this module only; each role lives in a
module of its own:

* `cart.write_engine`: the concurrency and idempotency engine every write goes through (the last known
  version, one conditional write, conflicts, lost answers, idempotency keys);
* `cart.commands`: add, set a quantity, remove, empty; deleting a cart, and the cart of an account;
* `cart.cleanup`: deleting abandoned guest carts;
* `cart.merge`: the guest-cart merge protocol at log-in.
"""

from __future__ import annotations

from cart.cleanup import delete_abandoned_guest_carts
from cart.commands import add_item, clear_cart, delete_cart, delete_user_cart, remove_item, set_quantity
from cart.documents import ensure_cart_index as _ensure_cart_index
from cart.merge import MergedLine, MergeResult, merge_anonymous_cart

__all__ = [
    "MergeResult",
    "MergedLine",
    "add_item",
    "clear_cart",
    "delete_abandoned_guest_carts",
    "delete_cart",
    "delete_user_cart",
    "ensure_cart_index",
    "merge_anonymous_cart",
    "remove_item",
    "set_quantity",
]


def ensure_cart_index() -> bool:
    """Create the cart index and alias if missing (called by `manage.py seed`; writes call it lazily)."""
    return _ensure_cart_index()
