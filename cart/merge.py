"""Merging an anonymous cart into the user's cart at log-in: a small protocol over two documents, safe to
interrupt and to repeat (docs/cart.md, "Merge at log-in")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from elasticsearch import ConflictError, NotFoundError

from cart import events, versions
from cart.commands import event, publish_leftovers, with_quantity
from cart.documents import carts_alias, ensure_cart_index
from cart.domain import UNAVAILABLE, Cart, Line, capped_quantity, line_limit
from cart.owners import user_cart_id
from cart.selectors import read_cart
from cart.write_engine import Change, Operation, apply, backoff, busy, now_iso
from catalog.selectors import get_offers
from shopcart import es

# How many applied merge-claim ids a user cart remembers (a retried merge is recognised by them).
APPLIED_MERGES_KEPT = 20


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


def apply_claim(*, claim: dict[str, Any], target_id: str) -> list[MergedLine]:
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
                lines = [with_quantity(line, new) if line.product_id == offer.id else line for line in lines]
            else:
                # The anonymous line's add-time price comes along, so a price change still shows.
                lines.append(with_quantity(anon_line, new))
            change_events.append(
                event(
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

    apply(cart_id=target_id, mutate=mutate, operation=Operation.new(key=None, request=("merge", claim["id"])))
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
        anon = read_cart(cart_id=anon_cart_id)
        if not anon.exists:
            return result
        try:
            claim = anon.source.get("pending_merge")
            if claim:
                result.lines.extend(apply_claim(claim=claim, target_id=str(claim.get("into") or target_id)))
            if anon.lines:
                new_claim = {
                    "id": uuid.uuid4().hex,
                    "into": target_id,
                    "from": anon_cart_id,
                    "lines": [line.to_source() for line in anon.lines],
                }
                es.writer().index(
                    index=anon.index or carts_alias(),
                    id=anon_cart_id,
                    document={**anon.source, "lines": [], "pending_merge": new_claim, "updated_at": now_iso()},
                    if_seq_no=anon.seq_no,
                    if_primary_term=anon.primary_term,
                )
                continue  # the next round applies the claim and deletes the anonymous cart
            # The anonymous cart's own events go out before it does; if NATS is down they stay, and the
            # emptied cart with them, for the relay (the guest-cart clean-up deletes it later).
            if events.pending_entries(publish_leftovers(anon)):
                return result
            es.writer().delete(
                index=anon.index or carts_alias(),
                id=anon_cart_id,
                if_seq_no=anon.seq_no,
                if_primary_term=anon.primary_term,
            )
            versions.forget(anon_cart_id)
            return result
        except NotFoundError:
            return result  # someone else finished this merge
        except ConflictError:
            conflicts += 1
            if conflicts > retries:
                break
            backoff(conflicts - 1)
    raise busy()
