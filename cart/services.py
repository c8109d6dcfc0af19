"""Writes to carts. Keyword-only arguments; refusals are domain errors (cart.errors).

Concurrency: every change is read-modify-write of one document. The read is a real-time GET, which
returns the document's `_seq_no`/`_primary_term`; the write is conditional on them (or `op_type=create`
for a cart that does not exist yet), so Elasticsearch rejects it with a 409 if anything else wrote the
cart in between. On that conflict the change is recomputed from a fresh read and tried again, up to
CART_WRITE_RETRIES times with jittered exponential backoff; then CartBusy (409) tells the client that
nothing was changed and it may retry. A write Elasticsearch acknowledged is never overwritten by a
change computed from an older read, and a change is either applied whole or not at all.

Validation (a quantity a whole number from 1 to the per-line maximum; then cart.domain's one rule
for the product's offer: sold, in the cart's currency, within stock and the maximum, also after
merging with the existing line) runs against the version being written.

The same write carries the change's events (`pending_events`, published and removed right after, or
by the relay: cart.events) and the operation's id and idempotency key (`ops`), so a change, its events
and the proof that it was applied are stored together or not at all. A write whose answer is lost is
resolved by reading that proof back (`_apply`); a retried request is recognised by its key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from elasticsearch import ConflictError, NotFoundError
from elasticsearch.helpers import scan, streaming_bulk

from cart import events
from cart.documents import cart_writer, carts_alias
from cart.documents import ensure_cart_index as _ensure_cart_index
from cart.domain import MAX_PRODUCT_ID_LENGTH, UNAVAILABLE, Cart, Line, capped_quantity, check_line, line_limit, sold
from cart.errors import (
    CartBusy,
    CartOutcomeUnknown,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    LineNotFound,
    ProductUnavailable,
    QuantityInvalid,
    QuantityOverMaximum,
    quantity_message,
)
from cart.owners import user_cart_id
from cart.selectors import get_cart
from catalog.selectors import Offer, get_offers
from shopcart import es
from shopcart.eventbus import EventBusUnavailable

logger = logging.getLogger(__name__)

_random = random.SystemRandom()
# How many applied merge-claim ids a user cart remembers (a retried merge is recognised by them).
APPLIED_MERGES_KEPT = 20


def ensure_cart_index() -> bool:
    """Create the cart index and alias if missing (called by `manage.py seed`; writes call it lazily)."""
    return _ensure_cart_index()


# -- changes -----------------------------------------------------------------------------------------


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


def _source_for(cart: Cart, change: Change, *, op: dict[str, Any]) -> dict[str, Any]:
    """The document to write: the change, its events added to the pending ones, and the operation
    recorded, all in the one conditional write (so none of them can exist without the others)."""
    now = _now()
    source = dict(cart.source)
    user_id = _user_id(cart.id)
    pending = [
        # Those this process has seen published (their removal lost a race) leave with this write.
        *events.still_pending(source.get("pending_events") or []),
        *(events.pending_entry(event) for event in change.events),
    ]
    source.update(
        kind="user" if user_id is not None else "anonymous",
        user_id=str(user_id) if user_id is not None else None,
        currency=change.currency,
        lines=[line.to_source() for line in change.lines],
        updated_at=now,
        pending_events=pending,
        has_pending_events=bool(pending),
    )
    source.setdefault("created_at", now)
    source.update(change.fields)
    _record_op(source, op)
    return source


def _backoff(attempt: int) -> None:
    base = settings.CART_RETRY_BACKOFF_BASE
    cap = settings.CART_RETRY_BACKOFF_CAP
    # Full jitter: spreads the retries of requests that collided, so they do not collide again.
    time.sleep(_random.uniform(0, min(cap, base * 2**attempt)))


def _writer() -> Any:
    # Looked up on each write, so a test can wrap the real client to lose an answer after the write.
    return cart_writer()


def _fault_after_write() -> None:
    """The test-only fault hook (CART_FAULT_AFTER_WRITE): die as a crash would, with the write
    acknowledged and nothing after it done."""
    if settings.CART_FAULT_AFTER_WRITE == "kill":
        os.kill(os.getpid(), signal.SIGKILL)


def _busy() -> CartBusy:
    return CartBusy("Your cart is being changed by another request at the same moment; please try again.")


# -- operations: a lost answer resolved, an idempotency key recognised ----------------------------------

# An operation without a key is remembered only while a lost answer may still be looked up (seconds);
# the cap keeps a very busy cart's document small, and `ops_dropped_until` says when it cut something.
UNKEYED_OPS_TTL = 60.0
UNKEYED_OPS_KEPT = 20
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class Operation:
    """One call of a write service: its id (recorded in the document it writes), and the client's
    idempotency key with the fingerprint of what was asked (same key, other request: refused)."""

    id: str
    started: float
    key: str | None = None
    fingerprint: str = ""

    @classmethod
    def new(cls, *, key: str | None, request: tuple[Any, ...]) -> Operation:
        if key is not None:
            _check_key(key)
        digest = hashlib.sha256(json.dumps(request, separators=(",", ":")).encode()).hexdigest()[:16]
        return cls(id=uuid.uuid4().hex, started=round(time.time(), 3), key=key, fingerprint=digest)

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "at": round(time.time(), 3)}
        if self.key is not None:
            record.update(key=self.key, fp=self.fingerprint)
        return record


def _check_key(key: str) -> None:
    if not (0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH) or not all(" " <= char <= "~" for char in key):
        raise IdempotencyKeyInvalid(
            f"An idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters (a UUID is best)."
        )


def _record_op(source: dict[str, Any], op: dict[str, Any]) -> None:
    """Append the operation to `ops`, dropping keyed ones past CART_IDEMPOTENCY_KEY_TTL or the last
    CART_IDEMPOTENCY_KEYS_KEPT, and unkeyed ones past a minute or the last few. Whatever is dropped,
    by age or by count, moves `ops_dropped_until` (so a replica whose clock runs ahead cannot make an
    operation's record vanish unnoticed)."""
    now = time.time()
    key_ttl = settings.CART_IDEMPOTENCY_KEY_TTL
    before = [*(source.get("ops") or []), op]
    keyed = [o for o in before if "key" in o and now - float(o["at"]) < key_ttl]
    unkeyed = [o for o in before if "key" not in o and now - float(o["at"]) < UNKEYED_OPS_TTL]
    keyed_kept = max(1, settings.CART_IDEMPOTENCY_KEYS_KEPT)
    kept = sorted(keyed[-keyed_kept:] + unkeyed[-UNKEYED_OPS_KEPT:], key=lambda o: float(o["at"]))
    kept_ids = {o["id"] for o in kept}
    dropped_at = [float(o["at"]) for o in before if o["id"] not in kept_ids]
    if dropped_at:
        source["ops_dropped_until"] = max(float(source.get("ops_dropped_until") or 0), *dropped_at)
    source["ops"] = kept


def _applied(cart: Cart, operation: Operation) -> bool:
    """Whether this cart version holds `operation`: its own id (a write whose answer was lost), or the
    same idempotency key (a retried request). IdempotencyKeyReused if the key came with another request."""
    key_ttl = settings.CART_IDEMPOTENCY_KEY_TTL
    for op in cart.source.get("ops") or []:
        if op.get("id") == operation.id:
            return True
        if operation.key is not None and op.get("key") == operation.key and time.time() - float(op["at"]) < key_ttl:
            if op.get("fp") != operation.fingerprint:
                raise IdempotencyKeyReused(
                    "This idempotency key was already used for a different change of this cart; "
                    "use a new key for a new change."
                )
            return True
    return False


def _replay(cart: Cart, operation: Operation) -> Cart | None:
    """The answer to a request whose key this cart already holds (None: not applied yet)."""
    if operation.key is None or not _applied(cart, operation):
        return None
    return dataclasses.replace(cart, replayed=True)


def _outcome_unknown() -> CartOutcomeUnknown:
    return CartOutcomeUnknown(
        "We could not confirm whether your cart change was saved: the database stopped answering. Look at "
        "your cart before trying again (an API client may retry with the same Idempotency-Key)."
    )


def _read_resolving(cart_id: str) -> Cart:
    """The real-time GET that resolves a lost answer, retried a few times with backoff while the node
    or the cluster recovers; CartOutcomeUnknown if it never answers."""
    attempts = max(1, settings.CART_OUTCOME_READ_ATTEMPTS)
    for attempt in range(attempts):
        try:
            return get_cart(cart_id=cart_id)
        except Exception as exc:
            if not es.is_unavailable(exc):
                raise
            logger.warning("resolving a cart write on %s: read %d failed (%r)", cart_id, attempt + 1, exc)
            if attempt + 1 < attempts:
                time.sleep(min(1.6, 0.1 * 2**attempt))
    raise _outcome_unknown()


# -- the optimistic-concurrency loop ---------------------------------------------------------------


def _apply(*, cart_id: str, mutate: Mutation, operation: Operation, first_read: Cart | None = None) -> Cart:
    """Read the cart, compute the change, write it if nobody else wrote in between; else start over.
    `first_read`: a read the caller just made, used for the first attempt instead of reading again (the
    write is conditional on its version all the same).

    Every attempt writes the same operation id into the document. A write whose answer is lost
    (connection dropped or timed out, the node died: es.is_unavailable) may or may not have been applied,
    so the next attempt reads the cart again: if the id is there it was applied, and the answer says so;
    if the cart moved on without it, that write (conditional on an older version) can never apply; if
    the cart is unchanged, the next attempt writes at that same version, so of the lost write and the new
    one at most one can succeed. The operation is applied at most once, and the answer is the truth."""
    ensure_cart_index()
    retries = settings.CART_WRITE_RETRIES
    # The version a write with a lost answer was conditional on, while that write may still apply.
    uncertain: tuple[int | None, int | None] | None = None
    lost: Exception | None = None
    for attempt in range(retries + 1):
        if attempt == 0 and first_read is not None:
            cart = first_read
        elif uncertain is not None:
            cart = _read_resolving(cart_id)
        else:
            cart = get_cart(cart_id=cart_id)
        if uncertain is not None:
            if _applied(cart, operation):
                logger.info("cart %s: a write whose answer was lost had been applied", cart_id)
                return _published(cart, own=None)
            if (cart.seq_no, cart.primary_term) != uncertain:
                if float(cart.source.get("ops_dropped_until") or 0) >= operation.started:
                    raise _outcome_unknown()  # our record may have been pushed out: its absence proves nothing
                uncertain = None
        replayed = _replay(cart, operation)
        if replayed is not None:
            return replayed
        change = mutate(cart)  # domain errors propagate: nothing was written
        if change is None:
            return cart
        source = _source_for(cart, change, op=operation.record())
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
        except Exception as exc:
            if not es.is_unavailable(exc):
                raise
            if es.never_sent(exc) and uncertain is None:
                raise  # nothing reached Elasticsearch: the usual 503, "nothing was changed", is the truth
            logger.warning("cart %s: the answer to a write was lost (%r); reading it back", cart_id, exc)
            uncertain, lost = (cart.seq_no, cart.primary_term), exc
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
        # Only now, with the write acknowledged, do its events exist; publish them at once.
        return _published(written, own=[event["eventId"] for event in change.events])
    if uncertain is not None:
        cart = _read_resolving(cart_id)
        if _applied(cart, operation):
            return _published(cart, own=None)
        if (cart.seq_no, cart.primary_term) == uncertain or lost is None:
            raise _outcome_unknown()
        raise lost  # not applied, and it never will be: the usual 503, "nothing was changed", is the truth
    raise _busy()


def _published(cart: Cart, *, own: list[str] | None) -> Cart:
    """The fast path of the events: publish what this request wrote (None: whatever is pending) and
    remove it from the cart. Best effort: what is left, the relay publishes."""
    events.ensure_relay_thread()
    if not events.pending_entries(cart):
        return cart
    try:
        published = events.publish_pending(
            cart=cart, own=own or (), grace=0.0 if own is None else None, clear_attempts=1 if own else 3
        )
        return published.cart
    except Exception as exc:
        if es.is_unavailable(exc):  # the change is stored with its events; the relay sends them later
            logger.warning("cart %s: publishing its events failed (%r); the relay will", cart.id, exc)
            return cart
        raise


# -- validation --------------------------------------------------------------------------------------


def _check_quantity(quantity: object) -> int:
    maximum = settings.CART_MAX_QUANTITY_PER_LINE
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise QuantityInvalid(quantity_message(maximum))
    if quantity > maximum:
        raise QuantityOverMaximum(f"You can have at most {maximum} of one product in your cart.", maximum=maximum)
    return quantity


def _sold_offer(product_id: str) -> Offer:
    """The product's offer, refused (ProductUnavailable) before anything else if it is not sold."""
    if not isinstance(product_id, str) or not product_id or len(product_id) > MAX_PRODUCT_ID_LENGTH:
        raise ProductUnavailable("This product does not exist.")
    return sold(get_offers(product_ids=[product_id]).get(product_id))


def _replace_line(lines: tuple[Line, ...], new: Line) -> list[Line]:
    return [new if line.product_id == new.product_id else line for line in lines]


def _with_quantity(line: Line, quantity: int) -> Line:
    return line._replace(quantity=quantity)


def _event(event_type: str, cart: Cart, **fields: Any) -> dict[str, Any]:
    return events.build_event(event_type=event_type, cart_id=cart.id, user_id=_user_id(cart.id), **fields)


# -- the changes ---------------------------------------------------------------------------------------


def _start(*, cart_id: str, key: str | None, request: tuple[Any, ...]) -> tuple[Operation, Cart | None]:
    """The operation of a write service call, and with an idempotency key, the cart read first: a request
    already applied is answered from it (`replayed`) before anything is validated again, since what it
    validated (the product, the line) may have changed since. Without a key there is no extra read."""
    operation = Operation.new(key=key, request=request)
    if key is None:
        return operation, None
    cart = get_cart(cart_id=cart_id)
    return operation, _replay(cart, operation) or cart


def add_item(*, cart_id: str, product_id: str, quantity: int, idempotency_key: str | None = None) -> Cart:
    """Add `quantity` of a product; an existing line's quantity grows (the line keeps the price it was
    first added at, so the summary can flag a price change). Returns the cart as written (`replayed`
    when `idempotency_key` was applied before: then nothing is written)."""
    operation, first_read = _start(cart_id=cart_id, key=idempotency_key, request=("add", product_id, quantity))
    if first_read is not None and first_read.replayed:
        return first_read
    quantity = _check_quantity(quantity)
    offer = _sold_offer(product_id)
    maximum = settings.CART_MAX_QUANTITY_PER_LINE

    def mutate(cart: Cart) -> Change:
        line = cart.line(product_id)
        old = line.quantity if line else 0
        new = old + quantity
        product = check_line(offer=offer, cart=cart, quantity=new, current=old, maximum=maximum)
        if line:
            lines = _replace_line(cart.lines, _with_quantity(line, new))
        else:
            lines = [*cart.lines, Line.of_offer(product, quantity=new, added_at=_now())]
        event = _event("item_added", cart, product_id=product.id, old_quantity=old, new_quantity=new, sku=product.sku)
        return Change(lines=lines, currency=product.currency, events=[event])

    return _apply(cart_id=cart_id, mutate=mutate, operation=operation, first_read=first_read)


def set_quantity(*, cart_id: str, product_id: str, quantity: int, idempotency_key: str | None = None) -> Cart:
    """Set a line's quantity (1..maximum, within stock); 0 removes the line, as `remove_item` (the pages and
    the API alike). LineNotFound if the cart has no such line."""
    if quantity == 0 and not isinstance(quantity, bool):
        return remove_item(cart_id=cart_id, product_id=product_id, idempotency_key=idempotency_key)
    operation, current = _start(cart_id=cart_id, key=idempotency_key, request=("set", product_id, quantity))
    if current is not None and current.replayed:
        return current
    quantity = _check_quantity(quantity)

    def line_of(cart: Cart) -> Line:
        line = cart.line(product_id)
        if line is None:
            raise LineNotFound()
        return line

    current = current or get_cart(cart_id=cart_id)
    line_of(current)  # report a missing line before looking up the product
    offer = _sold_offer(product_id)
    maximum = settings.CART_MAX_QUANTITY_PER_LINE

    def mutate(cart: Cart) -> Change | None:
        line = line_of(cart)
        if line.quantity == quantity:
            return None  # nothing to write, nothing happened
        check_line(offer=offer, cart=cart, quantity=quantity, current=0, maximum=maximum)
        event = _event("item_updated", cart, product_id=product_id, old_quantity=line.quantity, new_quantity=quantity)
        return Change(
            lines=_replace_line(cart.lines, _with_quantity(line, quantity)), currency=cart.currency, events=[event]
        )

    return _apply(cart_id=cart_id, mutate=mutate, operation=operation, first_read=current)


def remove_item(*, cart_id: str, product_id: str, idempotency_key: str | None = None) -> Cart:
    """Remove a line (also one whose product is gone). LineNotFound if the cart has no such line."""
    operation, first_read = _start(cart_id=cart_id, key=idempotency_key, request=("remove", product_id))
    if first_read is not None and first_read.replayed:
        return first_read

    def mutate(cart: Cart) -> Change:
        line = cart.line(product_id)
        if line is None:
            raise LineNotFound()
        lines = [other for other in cart.lines if other.product_id != product_id]
        event = _event("item_removed", cart, product_id=product_id, old_quantity=line.quantity, new_quantity=0)
        return Change(lines=lines, currency=cart.currency, events=[event])

    return _apply(cart_id=cart_id, mutate=mutate, operation=operation, first_read=first_read)


def clear_cart(*, cart_id: str, idempotency_key: str | None = None) -> Cart:
    """Empty the cart. One `cleared` event listing the lines that were removed; none if already empty."""
    operation, first_read = _start(cart_id=cart_id, key=idempotency_key, request=("clear",))
    if first_read is not None and first_read.replayed:
        return first_read

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
        return Change(lines=[], currency=settings.CART_DEFAULT_CURRENCY, events=[event])

    return _apply(cart_id=cart_id, mutate=mutate, operation=operation, first_read=first_read)


def delete_cart(*, cart_id: str) -> bool:
    """Delete a cart document outright (its owner's account was deleted). True if there was one.
    No event of its own (the account, not the cart, is what went away), but the events of its changes
    that are still pending are published first (best effort: with NATS down they are lost with it)."""
    ensure_cart_index()
    cart = _published(get_cart(cart_id=cart_id), own=None)
    if events.pending_entries(cart):
        logger.error("cart %s deleted with %d unpublished event(s)", cart_id, len(events.pending_entries(cart)))
    try:
        _writer().delete(index=carts_alias(), id=cart_id)
    except NotFoundError:
        return False
    return True


def delete_user_cart(*, user_id: int) -> bool:
    """The cart of an account being deleted: emptied first like any emptying (one `cleared` event listing
    its lines, written with the change and published at once), then the document deleted (delete_cart).
    True if there was a document. While an event of this cart cannot be published (NATS down), raises
    EventBusUnavailable and keeps the document, emptied: the relay sends the event later, and deleting
    the account again finishes the job. No event is ever deleted with its cart."""
    cart_id = user_cart_id(user_id)
    clear_cart(cart_id=cart_id)
    if events.pending_entries(_published(get_cart(cart_id=cart_id), own=None)):
        raise EventBusUnavailable(f"the events of cart {cart_id} could not be published before deleting it")
    return delete_cart(cart_id=cart_id)


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
            ],
            # Its events must reach the stream first (the relay publishes them and clears the flag).
            "must_not": [{"term": {"has_pending_events": True}}],
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
    offers = get_offers(product_ids=[line.product_id for line in claimed])
    maximum = settings.CART_MAX_QUANTITY_PER_LINE
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
            offer = offers.get(anon_line.product_id)
            existing = next((line for line in lines if line.product_id == anon_line.product_id), None)
            old = existing.quantity if existing else 0
            wanted = old + anon_line.quantity
            limit = line_limit(offer=offer, currency=currency, maximum=maximum)
            new, reason = capped_quantity(wanted=wanted, limit=limit)
            if offer is None or reason == UNAVAILABLE:
                outcome.append(MergedLine(anon_line.product_id, anon_line.name, anon_line.quantity, 0, reason))
                continue
            currency = offer.currency
            outcome.append(MergedLine(offer.id, offer.name, anon_line.quantity, max(0, new - old), reason))
            if new <= old:
                continue
            if existing:
                lines = [_with_quantity(line, new) if line.product_id == offer.id else line for line in lines]
            else:
                # The anonymous line's add-time price comes along, so a price change still shows.
                lines.append(_with_quantity(anon_line, new))
            change_events.append(
                _event(
                    "merged",
                    cart,
                    product_id=offer.id,
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

    _apply(cart_id=target_id, mutate=mutate, operation=Operation.new(key=None, request=("merge", claim["id"])))
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
    retries = settings.CART_WRITE_RETRIES
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
            if events.pending_entries(anon):
                # The anonymous cart's own events go out before it does; if NATS is down they stay, and
                # the emptied cart with them, for the relay (the guest-cart clean-up deletes it later).
                published = _published(anon, own=None)
                if events.pending_entries(published):
                    return result
                anon = published
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
