"""Writes to carts. Keyword-only arguments; refusals are domain errors (cart.errors).

Concurrency: every change is read-modify-write of one document. The read is a real-time GET, which
returns the document's `_seq_no`/`_primary_term`; the write is conditional on them (or `op_type=create`
for a cart that does not exist yet), so Elasticsearch rejects it with a 409 if anything else wrote the
cart in between. On that conflict the change is recomputed from a fresh read and tried again, up to
CART_WRITE_RETRIES times with jittered exponential backoff; then CartBusy (409) tells the client that
nothing was changed and it may retry. A write Elasticsearch acknowledged is never overwritten by a
change computed from an older read, and a change is either applied whole or not at all.

Validation (product exists and is active, quantity a whole number from 1 to the per-line maximum and
within stock, also after merging with the existing line) runs against the version being written.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from elasticsearch import ConflictError, NotFoundError
from elasticsearch.helpers import scan, streaming_bulk

from cart import conf, events
from cart.documents import carts_alias
from cart.documents import ensure_cart_index as _ensure_cart_index
from cart.errors import (
    CartBusy,
    CurrencyMismatch,
    LineNotFound,
    OutOfStock,
    ProductUnavailable,
    QuantityInvalid,
    QuantityOverMaximum,
)
from cart.owners import user_cart_id
from cart.selectors import Cart, Line, get_cart
from catalog.errors import ProductNotFound
from catalog.selectors import Product, get_product, get_products
from shopcart import es

logger = logging.getLogger(__name__)

_random = random.SystemRandom()
MAX_PRODUCT_ID_LENGTH = 100
# How many applied merge-claim ids a user cart remembers (a retried merge is recognised by them).
APPLIED_MERGES_KEPT = 20


def ensure_cart_index() -> bool:
    """Create the cart index and alias if missing (called by `manage.py seed`; writes call it lazily)."""
    return _ensure_cart_index()


# -- the optimistic-concurrency loop ---------------------------------------------------------------


@dataclass
class Change:
    """What a mutation wants written: the new lines, other document fields, and the events it causes."""

    lines: list[Line]
    currency: str
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


Mutation = Callable[[Cart], Change | None]


def _now() -> str:
    return timezone.now().isoformat()


def _user_id(cart_id: str) -> int | None:
    prefix, _, rest = cart_id.partition("-")
    return int(rest) if prefix == "user" and rest.isdigit() else None


def _source_for(cart: Cart, change: Change) -> dict[str, Any]:
    now = _now()
    source = dict(cart.source)
    user_id = _user_id(cart.id)
    source.update(
        kind="user" if user_id is not None else "anonymous",
        user_id=str(user_id) if user_id is not None else None,
        currency=change.currency,
        lines=[line.to_source() for line in change.lines],
        updated_at=now,
    )
    source.setdefault("created_at", now)
    source.update(change.fields)
    return source


def _backoff(attempt: int) -> None:
    base = float(conf.get("CART_RETRY_BACKOFF_BASE"))
    cap = float(conf.get("CART_RETRY_BACKOFF_CAP"))
    # Full jitter: spreads the retries of requests that collided, so they do not collide again.
    time.sleep(_random.uniform(0, min(cap, base * 2**attempt)))


_writer_cache: tuple[Any, Any] | None = None


def _writer() -> Any:
    # No transport-level retry: re-sending a conditional write after a dropped connection could turn
    # our own applied write into a "conflict" and have it applied a second time.
    # Built once per client (options() copies the client: ~0.2 ms on every write otherwise).
    global _writer_cache
    base, cached = es.client(), _writer_cache
    if cached is None or cached[0] is not base:
        cached = _writer_cache = (base, base.options(max_retries=0))
    return cached[1]


def _fault_after_write() -> None:
    """The test-only fault hook (CART_FAULT_AFTER_WRITE): die as a crash would, with the write
    acknowledged and nothing after it done."""
    if conf.get("CART_FAULT_AFTER_WRITE") == "kill":
        os.kill(os.getpid(), signal.SIGKILL)


def _busy() -> CartBusy:
    return CartBusy("Your cart is being changed by another request at the same moment; please try again.")


def _apply(*, cart_id: str, mutate: Mutation, first_read: Cart | None = None) -> Cart:
    """Read the cart, compute the change, write it if nobody else wrote in between; else start over.
    `first_read`: a read the caller just made, used for the first attempt instead of reading again (the
    write is conditional on its version all the same)."""
    ensure_cart_index()
    retries = conf.write_retries()
    for attempt in range(retries + 1):
        cart = first_read if attempt == 0 and first_read is not None else get_cart(cart_id=cart_id)
        change = mutate(cart)  # domain errors propagate: nothing was written
        if change is None:
            return cart
        source = _source_for(cart, change)
        try:
            if cart.exists:
                response = _writer().index(
                    index=carts_alias(),
                    id=cart_id,
                    document=source,
                    if_seq_no=cart.seq_no,
                    if_primary_term=cart.primary_term,
                )
            else:
                response = _writer().index(index=carts_alias(), id=cart_id, document=source, op_type="create")
        except ConflictError:
            if attempt < retries:
                _backoff(attempt)
            continue
        _fault_after_write()
        written = Cart(
            id=cart_id,
            lines=tuple(change.lines),
            currency=change.currency,
            seq_no=int(response["_seq_no"]),
            primary_term=int(response["_primary_term"]),
            source=source,
        )
        # Only now, with the write acknowledged, do its events exist.
        events.emit(change.events)
        return written
    raise _busy()


# -- validation --------------------------------------------------------------------------------------


def _check_quantity(quantity: object) -> int:
    maximum = conf.max_quantity()
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise QuantityInvalid(f"Enter a whole number from 1 to {maximum}.")
    if quantity > maximum:
        raise QuantityOverMaximum(f"You can have at most {maximum} of one product in your cart.", maximum=maximum)
    return quantity


def _available_product(product_id: str) -> Product:
    if not isinstance(product_id, str) or not product_id or len(product_id) > MAX_PRODUCT_ID_LENGTH:
        raise ProductUnavailable("This product does not exist.")
    try:
        # Uncached: the price recorded in the line and the stock check must be current.
        return get_product(product_id=product_id, use_cache=False)
    except ProductNotFound:
        raise ProductUnavailable("This product is not available (it does not exist or is no longer sold).") from None


def _check_line_quantity(*, product: Product, new_quantity: int, current: int) -> None:
    """The quantity a line would end up with: within the maximum and within stock."""
    maximum = conf.max_quantity()
    if new_quantity > maximum:
        already = f" You have {current} already." if current else ""
        raise QuantityOverMaximum(
            f"You can have at most {maximum} of “{product.name}” in your cart.{already}", maximum=maximum
        )
    if new_quantity > product.stock:
        if product.stock <= 0:
            message = f"“{product.name}” is out of stock."
        else:
            already = f" (you have {current} in your cart)" if current else ""
            message = f"Only {product.stock} of “{product.name}” in stock{already}."
        raise OutOfStock(message, available=max(0, product.stock))


def _check_currency(*, cart: Cart, product: Product, product_id: str) -> None:
    others = [line for line in cart.lines if line.product_id != product_id]
    if others and cart.currency != product.currency:
        raise CurrencyMismatch(
            f"Your cart is in {cart.currency}; “{product.name}” is priced in {product.currency}. "
            "Check out or clear the cart first."
        )


def _replace_line(lines: tuple[Line, ...], new: Line) -> list[Line]:
    return [new if line.product_id == new.product_id else line for line in lines]


def _with_quantity(line: Line, quantity: int) -> Line:
    return line._replace(quantity=quantity)


def _event(event_type: str, cart: Cart, **fields: Any) -> dict[str, Any]:
    return events.build_event(event_type=event_type, cart_id=cart.id, user_id=_user_id(cart.id), **fields)


# -- the changes ---------------------------------------------------------------------------------------


def add_item(*, cart_id: str, product_id: str, quantity: int) -> Cart:
    """Add `quantity` of a product; an existing line's quantity grows (the line keeps the price it was
    first added at, so the summary can flag a price change). Returns the cart as written."""
    quantity = _check_quantity(quantity)
    product = _available_product(product_id)

    def mutate(cart: Cart) -> Change:
        _check_currency(cart=cart, product=product, product_id=product.id)
        line = cart.line(product.id)
        old = line.quantity if line else 0
        new = old + quantity
        _check_line_quantity(product=product, new_quantity=new, current=old)
        if line:
            lines = _replace_line(cart.lines, _with_quantity(line, new))
        else:
            added = Line(
                product_id=product.id,
                sku=product.sku,
                name=product.name,
                unit_price_cents=product.price_cents,
                currency=product.currency,
                quantity=new,
                added_at=_now(),
            )
            lines = [*cart.lines, added]
        event = _event("item_added", cart, product_id=product.id, old_quantity=old, new_quantity=new, sku=product.sku)
        return Change(lines=lines, currency=product.currency, events=[event])

    return _apply(cart_id=cart_id, mutate=mutate)


def set_quantity(*, cart_id: str, product_id: str, quantity: int) -> Cart:
    """Set a line's quantity (1..maximum, within stock). LineNotFound if the cart has no such line."""
    quantity = _check_quantity(quantity)

    def line_of(cart: Cart) -> Line:
        line = cart.line(product_id)
        if line is None:
            raise LineNotFound("This product is not in your cart.")
        return line

    current = get_cart(cart_id=cart_id)
    line_of(current)  # report a missing line before looking up the product
    product = _available_product(product_id)

    def mutate(cart: Cart) -> Change | None:
        line = line_of(cart)
        if line.quantity == quantity:
            return None  # nothing to write, nothing happened
        _check_line_quantity(product=product, new_quantity=quantity, current=0)
        event = _event("item_updated", cart, product_id=product_id, old_quantity=line.quantity, new_quantity=quantity)
        return Change(
            lines=_replace_line(cart.lines, _with_quantity(line, quantity)), currency=cart.currency, events=[event]
        )

    return _apply(cart_id=cart_id, mutate=mutate, first_read=current)


def remove_item(*, cart_id: str, product_id: str) -> Cart:
    """Remove a line (also one whose product is gone). LineNotFound if the cart has no such line."""

    def mutate(cart: Cart) -> Change:
        line = cart.line(product_id)
        if line is None:
            raise LineNotFound("This product is not in your cart.")
        lines = [other for other in cart.lines if other.product_id != product_id]
        event = _event("item_removed", cart, product_id=product_id, old_quantity=line.quantity, new_quantity=0)
        return Change(lines=lines, currency=cart.currency, events=[event])

    return _apply(cart_id=cart_id, mutate=mutate)


def clear_cart(*, cart_id: str) -> Cart:
    """Empty the cart. One `cleared` event listing the lines that were removed; none if already empty."""

    def mutate(cart: Cart) -> Change | None:
        if not cart.lines:
            return None
        event = _event(
            "cleared",
            cart,
            product_id=None,
            old_quantity=cart.raw_item_count,
            new_quantity=0,
            lines=[{"productId": line.product_id, "quantity": line.quantity} for line in cart.lines],
        )
        return Change(lines=[], currency=conf.default_currency(), events=[event])

    return _apply(cart_id=cart_id, mutate=mutate)


def delete_cart(*, cart_id: str) -> bool:
    """Delete a cart document outright (its owner's account was deleted). True if there was one.
    No event: the account, not the cart, is what went away."""
    ensure_cart_index()
    try:
        _writer().delete(index=carts_alias(), id=cart_id)
    except NotFoundError:
        return False
    return True


def delete_abandoned_guest_carts(*, idle_days: int, dry_run: bool = False) -> int:
    """Delete the anonymous carts nobody has changed for `idle_days` (CART_GUEST_CART_RETENTION_DAYS by
    default, longer than a session lives): a guest's cart is reachable only through their session, so
    these are carts nobody can open any more. Returns how many were deleted (found, with `dry_run`).

    Safe beside live traffic: each cart is deleted only at the version the search matched (a delete
    conditional on its `_seq_no`/`_primary_term`, as the writes are), so a guest who comes back at that
    moment and changes the cart keeps it. (A scan and a bulk delete rather than `_delete_by_query`,
    which does the same but lives in the reindex module the local server lacks, docs/adr/0001.)"""
    if idle_days < 1:
        raise ValueError("idle_days must be at least 1")
    ensure_cart_index()
    query = {
        "bool": {
            "filter": [
                {"term": {"kind": "anonymous"}},
                {"range": {"updated_at": {"lt": f"now-{int(idle_days)}d"}}},
            ]
        }
    }
    client = es.client()
    if dry_run:
        return int(client.count(index=carts_alias(), query=query)["count"])
    matched = scan(client, index=carts_alias(), query={"query": query, "seq_no_primary_term": True, "_source": False})
    deletes = (
        {
            "_op_type": "delete",
            "_index": hit["_index"],
            "_id": hit["_id"],
            "if_seq_no": hit["_seq_no"],
            "if_primary_term": hit["_primary_term"],
        }
        for hit in matched
    )
    deleted = 0
    for ok, item in streaming_bulk(client, deletes, raise_on_error=False, raise_on_exception=True):
        if ok:
            deleted += 1
        elif item["delete"].get("status") not in (404, 409):  # gone already, or changed since: both fine
            raise RuntimeError(f"deleting an abandoned cart failed: {item}")
    return deleted


# -- merging an anonymous cart at log-in ---------------------------------------------------------------


@dataclass(frozen=True)
class MergedLine:
    product_id: str
    name: str
    requested: int  # the quantity in the anonymous cart
    added: int  # what the user's cart gained (less when capped)
    reason: str = ""  # why less was added: "stock", "maximum" or "unavailable"


@dataclass
class MergeResult:
    lines: list[MergedLine] = field(default_factory=list)

    @property
    def added_items(self) -> int:
        return sum(line.added for line in self.lines)

    @property
    def capped(self) -> list[MergedLine]:
        return [line for line in self.lines if line.added < line.requested]


def _apply_claim(*, claim: dict[str, Any], target_id: str) -> list[MergedLine]:
    """Add a claimed set of anonymous lines to the user's cart, capped by stock and the maximum.
    Idempotent: the claim id is recorded in the same write, so applying it again changes nothing."""
    claimed = [Line.from_source(line) for line in claim.get("lines") or []]
    if not claimed:
        return []
    products = get_products(product_ids=[line.product_id for line in claimed])
    maximum = conf.max_quantity()
    from_cart = str(claim.get("from", ""))
    outcome: list[MergedLine] = []

    def mutate(cart: Cart) -> Change | None:
        outcome.clear()  # recomputed from this read when an earlier attempt conflicted
        applied = list(cart.source.get("applied_merges") or [])
        if claim["id"] in applied:
            return None
        lines = list(cart.lines)
        currency = cart.currency if cart.lines else None
        change_events = []
        for anon_line in claimed:
            product = products.get(anon_line.product_id)
            if product is None or not product.active or (currency and product.currency != currency):
                outcome.append(MergedLine(anon_line.product_id, anon_line.name, anon_line.quantity, 0, "unavailable"))
                continue
            currency = product.currency
            existing = next((line for line in lines if line.product_id == product.id), None)
            old = existing.quantity if existing else 0
            wanted = old + anon_line.quantity
            new = min(wanted, maximum, max(product.stock, 0))
            reason = "" if new == wanted else ("stock" if product.stock < min(wanted, maximum) else "maximum")
            outcome.append(MergedLine(product.id, product.name, anon_line.quantity, max(0, new - old), reason))
            if new <= old:
                continue
            if existing:
                lines = [_with_quantity(line, new) if line.product_id == product.id else line for line in lines]
            else:
                # The anonymous line's add-time price comes along, so a price change still shows.
                lines.append(_with_quantity(anon_line, new))
            change_events.append(
                _event(
                    "merged",
                    cart,
                    product_id=product.id,
                    old_quantity=old,
                    new_quantity=new,
                    fromCart=from_cart,
                    requestedQuantity=anon_line.quantity,
                    capped=new < wanted,
                )
            )
        if not change_events:
            return None
        return Change(
            lines=lines,
            currency=currency or cart.currency,
            fields={"applied_merges": [*applied, claim["id"]][-APPLIED_MERGES_KEPT:]},
            events=change_events,
        )

    _apply(cart_id=target_id, mutate=mutate)
    return outcome


def merge_anonymous_cart(*, anon_cart_id: str, user_id: int) -> MergeResult:
    """Move an anonymous cart into the user's cart (quantities add, capped by stock and the maximum)
    and delete the anonymous cart.

    Two documents cannot be written atomically, so the merge is a small protocol that is safe to
    interrupt and to run twice: (1) *claim* the anonymous lines by moving them, under optimistic
    concurrency, into the anonymous cart's `pending_merge` with a fresh claim id; (2) apply the claim
    to the user's cart, recording the claim id in that same write (so it is applied at most once);
    (3) delete the anonymous cart, conditional on the version that holds the claim. If an anonymous
    add slipped in meanwhile, the delete conflicts and the loop claims the new lines too. A crash
    leaves the claim in place, and the next merge finishes it."""
    ensure_cart_index()
    target_id = user_cart_id(user_id)
    result = MergeResult()
    retries = conf.write_retries()
    conflicts = 0
    # A claim round and an apply-and-delete round per batch of anonymous lines, plus the retries.
    for _round in range(2 * (retries + 2)):
        anon = get_cart(cart_id=anon_cart_id)
        if not anon.exists:
            return result
        try:
            claim = anon.source.get("pending_merge")
            if claim:
                result.lines.extend(_apply_claim(claim=claim, target_id=str(claim.get("into") or target_id)))
            if anon.lines:
                new_claim = {
                    "id": uuid.uuid4().hex,
                    "into": target_id,
                    "from": anon_cart_id,
                    "lines": [line.to_source() for line in anon.lines],
                }
                _writer().index(
                    index=carts_alias(),
                    id=anon_cart_id,
                    document={**anon.source, "lines": [], "pending_merge": new_claim, "updated_at": _now()},
                    if_seq_no=anon.seq_no,
                    if_primary_term=anon.primary_term,
                )
                continue  # the next round applies the claim and deletes the anonymous cart
            _writer().delete(
                index=carts_alias(), id=anon_cart_id, if_seq_no=anon.seq_no, if_primary_term=anon.primary_term
            )
            return result
        except NotFoundError:
            return result  # someone else finished this merge
        except ConflictError:
            conflicts += 1
            if conflicts > retries:
                break
            _backoff(conflicts - 1)
    raise _busy()
