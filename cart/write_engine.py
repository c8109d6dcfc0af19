"""The concurrency and idempotency engine every cart write goes through (`apply`).

A write starts from the cart's last known version (cart.versions: its `_source`, `_seq_no`,
`_primary_term` and physical index, kept in Redis by every replica) and goes straight to one conditional
index request: in the common case that is the only Elasticsearch request of a change. If another request
wrote the cart meanwhile (on any replica), Elasticsearch answers 409: the cart is read in real time and
the change computed again, up to CART_WRITE_RETRIES times with jittered backoff; then CartBusy (409)
tells the client nothing was changed. The compare-and-set in Elasticsearch is the only authority: a
stale or missing last known version costs a conflict and a read, never a lost or doubled change.

A decision that writes nothing (a refusal, a no-op, an idempotent replay) is never taken on the last
known version alone: the cart is read in real time and the change decided again on what it holds.

The same write carries the change's events (`pending_events`) and the operation's id and idempotency
key (`ops`), so a change, its events and the proof that it was applied are stored together or not at
all. A write whose answer is lost is resolved by reading that proof back (`resolve`); a retried request
is recognised by its key. The engine's I/O is a `CartStore`, so its decisions are unit-tested on a fake
one (tests/unit/test_write_engine.py).
"""

from __future__ import annotations

import dataclasses
import enum
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
from elasticsearch import ConflictError, Elasticsearch

from cart import events, versions
from cart.documents import cart_from_document, carts_alias, ensure_cart_index
from cart.domain import Cart, Line
from cart.errors import CartBusy, CartOutcomeUnknown, IdempotencyKeyInvalid, IdempotencyKeyReused
from cart.selectors import read_cart
from shopcart import es
from shopcart.errors import DomainError

logger = logging.getLogger(__name__)

_random = random.SystemRandom()


@dataclass
class Change:
    """What a mutation wants written: the new lines, other document fields, and the events it causes."""

    lines: list[Line]
    currency: str
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


Mutation = Callable[[Cart], Change | None]
Version = tuple[int | None, int | None, str | None]


def now_iso() -> str:
    return timezone.now().isoformat()


def user_id_of(cart_id: str) -> int | None:
    prefix, _, rest = cart_id.partition("-")
    return int(rest) if prefix == "user" and rest.isdigit() else None


def backoff(attempt: int) -> None:
    base = settings.CART_RETRY_BACKOFF_BASE
    cap = settings.CART_RETRY_BACKOFF_CAP
    # Full jitter: spreads the retries of requests that collided, so they do not collide again.
    time.sleep(_random.uniform(0, min(cap, base * 2**attempt)))


def busy() -> CartBusy:
    return CartBusy("Your cart is being changed by another request at the same moment; please try again.")


def outcome_unknown() -> CartOutcomeUnknown:
    return CartOutcomeUnknown(
        "We could not confirm whether your cart change was saved: the database stopped answering. Look at "
        "your cart before trying again (an API client may retry with the same Idempotency-Key)."
    )


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


def record_op(source: dict[str, Any], op: dict[str, Any]) -> None:
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


def applied(cart: Cart, operation: Operation) -> bool:
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


class Outcome(enum.Enum):
    """What a real-time read says of a write whose answer was lost."""

    APPLIED = "applied"  # the cart holds the operation
    NOT_APPLIED = "not applied"  # the cart moved on without it: that write was conditional on a version
    # that is gone, so it can never apply
    MAYBE_IN_FLIGHT = "maybe in flight"  # the cart is at that version still: the write may yet apply
    UNKNOWN = "unknown"  # the cart moved on, but the operation's record may have been dropped by the cap


def resolve(cart: Cart, operation: Operation, uncertain: Version) -> Outcome:
    """The one rule for a lost answer, used during the retries and after them."""
    if applied(cart, operation):
        return Outcome.APPLIED
    if cart.version == uncertain:
        return Outcome.MAYBE_IN_FLIGHT
    if float(cart.source.get("ops_dropped_until") or 0) >= operation.started:
        return Outcome.UNKNOWN  # our record may have been pushed out: its absence proves nothing
    return Outcome.NOT_APPLIED


def source_for(cart: Cart, change: Change, *, op: dict[str, Any], published: frozenset[str]) -> dict[str, Any]:
    """The document to write: the change, its events added to the pending ones, and the operation
    recorded, all in the one conditional write (so none of them can exist without the others). Events
    known to be published are left out (cart.events)."""
    now = now_iso()
    source = dict(cart.source)
    user_id = user_id_of(cart.id)
    before = source.get("pending_events") or []
    pending = [*events.unpublished(before, published), *(events.pending_entry(event) for event in change.events)]
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
    record_op(source, op)
    return source


# -- the I/O ------------------------------------------------------------------------------------------


def _writer() -> Elasticsearch:
    # Looked up on each write, so a test can wrap the real client to lose an answer after the write.
    return es.writer()


class CartStore:
    """The engine's I/O: Elasticsearch for the cart itself, Redis for what every replica knows of it
    (cart.versions), NATS for its events (cart.events)."""

    def ensure(self) -> None:
        ensure_cart_index()

    def last_known(self, cart_id: str) -> versions.Known:
        return versions.last_known(cart_id)

    def read(self, cart_id: str) -> Cart:
        return read_cart(cart_id=cart_id)

    def write(self, cart: Cart, source: dict[str, Any], body: bytes) -> Cart:
        """Write conditionally on `cart`'s version, in the physical index that version is in (a version
        means nothing in another one), or create the cart. ConflictError if it is not current."""
        if cart.exists:
            response = _writer().index(
                index=cart.index or carts_alias(),
                id=cart.id,
                document=body,
                if_seq_no=cart.seq_no,
                if_primary_term=cart.primary_term,
            )
        else:
            response = _writer().index(index=carts_alias(), id=cart.id, document=body, op_type="create")
        written = cart_from_document(
            cart.id,
            source,
            seq_no=int(response["_seq_no"]),
            primary_term=int(response["_primary_term"]),
            index=str(response["_index"]),
        )
        removed = tuple(line for line in cart.lines if written.line(line.product_id) is None)
        return dataclasses.replace(written, removed=removed)

    def after_write(self, cart: Cart, *, body: bytes | None, published: frozenset[str], own: list[str] | None) -> Cart:
        """With the write acknowledged, its events exist: publish them at once (cart.events.publish_due)
        and record the version and what was published (cart.versions); the marks of events this version
        no longer holds are forgotten (no later version holds them either). What is not published, the
        relay publishes."""
        ids = events.publish_due(cart, published=published, own=own)
        held = {events.entry_id(entry) for entry in events.pending_entries(cart)}
        versions.settle(cart, body=body, published=ids, dropped=[i for i in published if i not in held])
        return cart

    def remember(self, cart: Cart) -> None:
        versions.remember(cart)

    def fault_after_write(self) -> None:
        """The test-only fault hook (CART_FAULT_AFTER_WRITE; refused under production settings): die as a
        crash would, with the write acknowledged and nothing after it done."""
        if settings.CART_FAULT_AFTER_WRITE == "kill":
            os.kill(os.getpid(), signal.SIGKILL)


STORE = CartStore()


def read_resolving(store: CartStore, cart_id: str) -> Cart:
    """The real-time GET that resolves a lost answer, retried a few times with backoff while the node
    or the cluster recovers; CartOutcomeUnknown if it never answers."""
    attempts = max(1, settings.CART_OUTCOME_READ_ATTEMPTS)
    for attempt in range(attempts):
        try:
            return store.read(cart_id)
        except Exception as exc:
            if not es.is_unavailable(exc):
                raise
            logger.warning("resolving a cart write on %s: read %d failed (%r)", cart_id, attempt + 1, exc)
            if attempt + 1 < attempts:
                time.sleep(min(1.6, 0.1 * 2**attempt))
    raise outcome_unknown()


# -- the optimistic-concurrency loop ---------------------------------------------------------------


def apply(*, cart_id: str, mutate: Mutation, operation: Operation, store: CartStore = STORE) -> Cart:
    """Compute the change on the cart's last known version (or a real-time read if none is known) and
    write it if that version is current; else read the cart, compute again, write again (bounded).

    Every attempt writes the same operation id into the document. A write whose answer is lost
    (connection dropped or timed out, the node died: es.is_unavailable) may or may not have been applied,
    so the next attempt reads the cart again and `resolve`s it: applied, the answer says so; moved on
    without it, that write can never apply and the change is computed again; unchanged, the next attempt
    writes at that same version, so of the lost write and the new one at most one can succeed. The
    operation is applied at most once, and the answer is the truth."""
    store.ensure()
    retries = settings.CART_WRITE_RETRIES
    known = store.last_known(cart_id)
    published = known.published
    # `fresh`: `cart` is a real-time read (decisions that write nothing are taken on one only).
    cart, fresh = (known.cart, False) if known.cart is not None else (store.read(cart_id), True)
    # The version a write with a lost answer was conditional on, while that write may still apply.
    uncertain: Version | None = None
    lost: Exception | None = None
    attempts = 0  # writes tried on a real-time read; the one on a last known version is free

    def reread() -> Cart:
        return read_resolving(store, cart_id) if uncertain is not None else store.read(cart_id)

    while True:
        if uncertain is not None:
            outcome = resolve(cart, operation, uncertain)
            if outcome is Outcome.APPLIED:
                logger.info("cart %s: a write whose answer was lost had been applied", cart_id)
                return store.after_write(cart, body=None, published=published, own=None)
            if outcome is Outcome.UNKNOWN:
                raise outcome_unknown()
            if outcome is Outcome.NOT_APPLIED:
                uncertain = None
        try:
            replayed = operation.key is not None and applied(cart, operation)
            change = None if replayed else mutate(cart)
        except DomainError:
            if not fresh:  # refused on the last known version: decide again on what the cart holds now
                cart, fresh = store.read(cart_id), True
                continue
            store.remember(cart)
            raise  # nothing was written
        if change is None:
            if not fresh:
                cart, fresh = store.read(cart_id), True
                continue
            store.remember(cart)
            return dataclasses.replace(cart, replayed=True) if replayed else cart
        source = source_for(cart, change, op=operation.record(), published=published)
        body = versions.encode(source)
        try:
            written = store.write(cart, source, body)
        except ConflictError:
            if fresh:
                attempts += 1
                if attempts > retries:
                    break
                backoff(attempts - 1)
            cart, fresh = reread(), True
            continue
        except Exception as exc:
            if es.refused(exc) and uncertain is None:
                current = store.read(cart_id)
                if current.index != cart.index:  # that index was retired (cart_reindex): write in the new one
                    cart, fresh = current, True
                    continue
                raise  # a write block: nothing was written
            if not es.is_unavailable(exc):
                raise
            if es.never_sent(exc) and uncertain is None:
                raise  # nothing reached Elasticsearch: the usual 503, "nothing was changed", is the truth
            logger.warning("cart %s: the answer to a write was lost (%r); reading it back", cart_id, exc)
            uncertain, lost = cart.version, exc
            attempts += 1
            if attempts > retries:
                break
            cart, fresh = reread(), True
            continue
        store.fault_after_write()
        # Only now, with the write acknowledged, do its events exist; publish them at once.
        own = [event["eventId"] for event in change.events]
        return store.after_write(written, body=body, published=published, own=own)
    if uncertain is not None:
        cart = read_resolving(store, cart_id)
        outcome = resolve(cart, operation, uncertain)
        if outcome is Outcome.APPLIED:
            return store.after_write(cart, body=None, published=published, own=None)
        if outcome is Outcome.NOT_APPLIED and lost is not None:
            raise lost  # not applied, and it never will be: the usual 503, "nothing was changed", is the truth
        raise outcome_unknown()
    raise busy()
