"""The cart's commands: add, set a quantity, remove, empty; and deleting the cart of an account. Each
validates what does not depend on the cart, then hands the engine (cart.write_engine) a mutation that
decides on the cart's version: cart.domain's one rule for the product's offer (sold, in the cart's
currency, within stock and the maximum, also after merging with the existing line)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.conf import settings
from elasticsearch import NotFoundError

from cart import events, versions
from cart.documents import carts_alias, ensure_cart_index
from cart.domain import MAX_PRODUCT_ID_LENGTH, Cart, Line, check_line, sold
from cart.errors import LineNotFound, ProductUnavailable, QuantityInvalid, QuantityOverMaximum, quantity_message
from cart.owners import user_cart_id
from cart.selectors import read_cart
from cart.write_engine import Change, Operation, apply, now_iso, user_id_of
from catalog.selectors import Offer, get_offers
from shopcart import es
from shopcart.eventbus import EventBusUnavailable

logger = logging.getLogger(__name__)

# -- validation --------------------------------------------------------------------------------------


def check_quantity(quantity: object) -> int:
    maximum = settings.CART_MAX_QUANTITY_PER_LINE
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise QuantityInvalid(quantity_message(maximum))
    if quantity > maximum:
        raise QuantityOverMaximum(f"You can have at most {maximum} of one product in your cart.", maximum=maximum)
    return quantity


class _SoldOffer:
    """The product's offer, looked up once per request (the first attempt that needs it) and refused
    (ProductUnavailable) if it is not sold."""

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        self._offer: Offer | None = None

    def __call__(self) -> Offer:
        if self._offer is None:
            product_id = self.product_id
            if not isinstance(product_id, str) or not product_id or len(product_id) > MAX_PRODUCT_ID_LENGTH:
                raise ProductUnavailable("This product does not exist.")
            self._offer = sold(get_offers(product_ids=[product_id]).get(product_id))
        return self._offer


def replace_line(lines: tuple[Line, ...], new: Line) -> list[Line]:
    return [new if line.product_id == new.product_id else line for line in lines]


def with_quantity(line: Line, quantity: int) -> Line:
    return line._replace(quantity=quantity)


def event(event_type: str, cart: Cart, **fields: Any) -> dict[str, Any]:
    return events.build_event(event_type=event_type, cart_id=cart.id, user_id=user_id_of(cart.id), **fields)


# -- the changes ---------------------------------------------------------------------------------------
#
# Without an idempotency key, what does not depend on the cart (the quantity, whether the product is sold)
# is refused before anything is read. With a key, the engine looks for the key first: a request already
# applied is answered from the cart (`replayed`) before anything is validated again, since what it
# validated (the product, the line) may have changed since.


def add_item(*, cart_id: str, product_id: str, quantity: int, idempotency_key: str | None = None) -> Cart:
    """Add `quantity` of a product; an existing line's quantity grows (the line keeps the price it was
    first added at, so the summary can flag a price change). Returns the cart as written (`replayed`
    when `idempotency_key` was applied before: then nothing is written)."""
    operation = Operation.new(key=idempotency_key, request=("add", product_id, quantity))
    offer = _SoldOffer(product_id)
    if idempotency_key is None:
        check_quantity(quantity)
        offer()
    maximum = settings.CART_MAX_QUANTITY_PER_LINE

    def mutate(cart: Cart) -> Change:
        added = check_quantity(quantity)
        line = cart.line(product_id)
        old = line.quantity if line else 0
        new = old + added
        product = check_line(offer=offer(), cart=cart, quantity=new, current=old, maximum=maximum)
        if line:
            lines = replace_line(cart.lines, with_quantity(line, new))
        else:
            lines = [*cart.lines, Line.of_offer(product, quantity=new, added_at=now_iso())]
        change_event = event(
            "item_added", cart, product_id=product.id, old_quantity=old, new_quantity=new, sku=product.sku
        )
        return Change(lines=lines, currency=product.currency, events=[change_event])

    return apply(cart_id=cart_id, mutate=mutate, operation=operation)


def set_quantity(*, cart_id: str, product_id: str, quantity: int, idempotency_key: str | None = None) -> Cart:
    """Set a line's quantity (1..maximum, within stock); 0 removes the line, as `remove_item` (the cart page
    and the API alike: issue 17). LineNotFound if the cart has no such line."""
    if quantity == 0 and not isinstance(quantity, bool):
        return remove_item(cart_id=cart_id, product_id=product_id, idempotency_key=idempotency_key)
    operation = Operation.new(key=idempotency_key, request=("set", product_id, quantity))
    if idempotency_key is None:
        check_quantity(quantity)
    offer = _SoldOffer(product_id)
    maximum = settings.CART_MAX_QUANTITY_PER_LINE

    def mutate(cart: Cart) -> Change | None:
        wanted = check_quantity(quantity)
        line = cart.line(product_id)
        if line is None:
            raise LineNotFound()  # said before the product is looked up
        if line.quantity == wanted:
            return None  # nothing to write, nothing happened
        check_line(offer=offer(), cart=cart, quantity=wanted, current=0, maximum=maximum)
        change_event = event(
            "item_updated", cart, product_id=product_id, old_quantity=line.quantity, new_quantity=wanted
        )
        lines = replace_line(cart.lines, with_quantity(line, wanted))
        return Change(lines=lines, currency=cart.currency, events=[change_event])

    return apply(cart_id=cart_id, mutate=mutate, operation=operation)


def remove_item(*, cart_id: str, product_id: str, idempotency_key: str | None = None) -> Cart:
    """Remove a line (also one whose product is gone). LineNotFound if the cart has no such line. The
    cart returned names the line it took out (`removed`)."""
    operation = Operation.new(key=idempotency_key, request=("remove", product_id))

    def mutate(cart: Cart) -> Change:
        line = cart.line(product_id)
        if line is None:
            raise LineNotFound()
        lines = [other for other in cart.lines if other.product_id != product_id]
        change_event = event("item_removed", cart, product_id=product_id, old_quantity=line.quantity, new_quantity=0)
        return Change(lines=lines, currency=cart.currency, events=[change_event])

    return apply(cart_id=cart_id, mutate=mutate, operation=operation)


def clear_cart(*, cart_id: str, idempotency_key: str | None = None) -> Cart:
    """Empty the cart. One `cleared` event listing the lines that were removed; none if already empty."""
    operation = Operation.new(key=idempotency_key, request=("clear",))

    def mutate(cart: Cart) -> Change | None:
        if not cart.lines:
            return None
        change_event = event(
            "cleared",
            cart,
            product_id=None,
            old_quantity=cart.raw_item_count,
            new_quantity=0,
            lines=[{"productId": line.product_id, "quantity": line.quantity} for line in cart.lines],
        )
        return Change(lines=[], currency=settings.CART_DEFAULT_CURRENCY, events=[change_event])

    return apply(cart_id=cart_id, mutate=mutate, operation=operation)


def publish_leftovers(cart: Cart) -> Cart:
    """Before a cart is deleted: publish its events not known to be published (best effort: with NATS
    down they stay). Returns the cart with the events still unpublished as its pending ones."""
    known = versions.published_of([cart.id])[cart.id]
    ids = events.publish_due(cart, published=known, own=None)
    versions.mark_published({cart.id: ids})
    left = events.unpublished(events.pending_entries(cart), known | frozenset(ids))
    return dataclasses.replace(cart, source={**cart.source, "pending_events": left})


def delete_cart(*, cart_id: str) -> bool:
    """Delete a cart document outright (its owner's account was deleted). True if there was one.
    No event of its own (the account, not the cart, is what went away), but the events of its changes
    that are still unpublished are published first (best effort: with NATS down they are lost with it)."""
    ensure_cart_index()
    cart = publish_leftovers(read_cart(cart_id=cart_id))
    if events.pending_entries(cart):
        logger.error("cart %s deleted with %d unpublished event(s)", cart_id, len(events.pending_entries(cart)))
    try:
        es.writer().delete(index=carts_alias(), id=cart_id)
    except NotFoundError:
        return False
    finally:
        versions.forget(cart_id)
    return True


def delete_user_cart(*, user_id: int) -> bool:
    """The cart of an account being deleted: emptied first like any emptying (one `cleared` event listing
    its lines, written with the change and published at once), then the document deleted (delete_cart).
    True if there was a document. While an event of this cart cannot be published (NATS down), raises
    EventBusUnavailable and keeps the document, emptied: the relay sends the event later, and deleting
    the account again finishes the job. No event is ever deleted with its cart."""
    cart_id = user_cart_id(user_id)
    clear_cart(cart_id=cart_id)
    if events.pending_entries(publish_leftovers(read_cart(cart_id=cart_id))):
        raise EventBusUnavailable(f"the events of cart {cart_id} could not be published before deleting it")
    return delete_cart(cart_id=cart_id)
