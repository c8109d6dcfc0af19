"""What every replica knows of a cart without asking Elasticsearch, kept in Redis:

* its **last known version**: `_source`, `_seq_no`, `_primary_term` and the physical index, stored after
  each acknowledged write and each real-time read. A write starts from it and goes straight to the
  conditional index request (cart.write_engine); if it is stale (another replica wrote since) or
  missing, that costs one conflict and a real-time GET, as before: the compare-and-set in Elasticsearch
  stays the only authority, and this is only where a write starts.
* which of its pending events are **known to be published** (JetStream acknowledged them): a set of event
  ids, added to by whoever publishes (a request, the relay) and trimmed by whoever writes a version that
  leaves them out. The next write of the cart leaves the published events out of the document it writes
  anyway; the relay removes them from idle carts (cart.events).

Both are hints that may be lost (a Redis failover, an eviction, the TTL) and are safe to lose: a missing
version costs a real-time read, a missing "published" mark a re-publish that JetStream drops by its
message id (cart.events). Neither is ever the reason for a decision that writes nothing (a refusal, a
no-op, an idempotent replay): those are taken on a real-time read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection

from cart.documents import cart_from_document, carts_alias
from cart.domain import Cart

logger = logging.getLogger(__name__)

# A published event's mark lives while the event may still be in its cart: the relay removes it from an
# idle cart within seconds, so this only bounds what an anomaly (a relay down for days) leaves behind.
PUBLISHED_TTL = 7 * 86400
# Read the entry's header only (its version and index) and store the new entry unless the stored one is
# of the same index and at least as new: racing writers and readers never move a cart's entry backwards.
_REMEMBER = """
local head = redis.call('GETRANGE', KEYS[1], 0, 255)
if head ~= '' then
  local term, seq, index = string.match(head, '^(%d+) (%d+) ([^\\n]*)\\n')
  if term and index == ARGV[3] then
    local new_term, new_seq = tonumber(ARGV[1]), tonumber(ARGV[2])
    term, seq = tonumber(term), tonumber(seq)
    if new_term < term or (new_term == term and new_seq <= seq) then
      if new_term == term and new_seq == seq then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Known:
    """A cart's last known version (None: nothing known) and the ids of its events known to be published."""

    cart: Cart | None
    published: frozenset[str]


def _redis() -> Any:
    return get_redis_connection("default")


def _version_key(cart_id: str) -> str:
    return cache.make_key(f"cart:version:{carts_alias()}:{cart_id}")


def _published_key(cart_id: str) -> str:
    return cache.make_key(f"cart:published:{carts_alias()}:{cart_id}")


def encode(source: dict[str, Any]) -> bytes:
    """A document body as sent to Elasticsearch and kept as a last known version (serialised once)."""
    return json.dumps(source, separators=(",", ":"), ensure_ascii=False).encode()


def _entry(cart: Cart, body: bytes | None) -> bytes:
    head = f"{cart.primary_term} {cart.seq_no} {cart.index}\n".encode()
    return head + (body if body is not None else encode(cart.source))


def _decode(cart_id: str, entry: bytes | None) -> Cart | None:
    if not entry:
        return None
    head, newline, body = entry.partition(b"\n")
    parts = head.decode().split(" ", 2)
    if not newline or len(parts) != 3:
        return None
    term, seq, index = parts
    return cart_from_document(cart_id, json.loads(body), seq_no=int(seq), primary_term=int(term), index=index)


def remember_in(pipeline: Any, cart: Cart, body: bytes | None = None) -> None:
    """`remember`, queued in a pipeline of the caller's (one round trip with what else it sends)."""
    if not cart.exists or cart.index is None:
        return
    args = (cart.primary_term, cart.seq_no, cart.index, _entry(cart, body), settings.CART_VERSION_CACHE_TTL)
    pipeline.eval(_REMEMBER, 1, _version_key(cart.id), *args)


def last_known(cart_id: str) -> Known:
    """The cart's last known version and its events known to be published: one Redis round trip. Nothing
    known when Redis cannot say (the write then starts from a real-time read)."""
    try:
        pipeline = _redis().pipeline(transaction=False)
        pipeline.get(_version_key(cart_id))
        pipeline.smembers(_published_key(cart_id))
        entry, published = pipeline.execute()
        return Known(_decode(cart_id, entry), frozenset(event_id.decode() for event_id in published))
    except Exception as exc:  # noqa: BLE001 - a hint only: without it the write reads the cart
        logger.warning("cart %s: its last known version could not be read (%r)", cart_id, exc)
        return Known(None, frozenset())


def remember(cart: Cart, *, body: bytes | None = None) -> None:
    """Keep this version of the cart (just read in real time, or just written) as its last known one,
    unless a newer one is kept already. Best effort."""
    if not cart.exists or cart.index is None:
        return
    try:
        pipeline = _redis().pipeline(transaction=False)
        remember_in(pipeline, cart, body)
        pipeline.execute()
    except Exception as exc:  # noqa: BLE001 - a hint only
        logger.warning("cart %s: its version could not be kept in Redis (%r)", cart.id, exc)


def settle(cart: Cart, *, body: bytes | None, published: Iterable[str], dropped: Iterable[str]) -> None:
    """After a write: keep the version written, mark the events just published, and forget the marks of
    events this version left out (they are in no later version either). One round trip; best effort
    (a lost mark means the relay publishes that event again, and JetStream drops it)."""
    published, dropped = list(published), list(dropped)
    try:
        pipeline = _redis().pipeline(transaction=False)
        if cart.exists and cart.index is not None:
            remember_in(pipeline, cart, body)
        key = _published_key(cart.id)
        if published:
            pipeline.sadd(key, *published)
            pipeline.expire(key, PUBLISHED_TTL)
        if dropped:
            pipeline.srem(key, *dropped)
        pipeline.execute()
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logger.warning("cart %s: its version and published events could not be recorded (%r)", cart.id, exc)


def published_of(cart_ids: list[str]) -> dict[str, frozenset[str]]:
    """The ids known to be published, per cart (the relay): one round trip."""
    if not cart_ids:
        return {}
    pipeline = _redis().pipeline(transaction=False)
    for cart_id in cart_ids:
        pipeline.smembers(_published_key(cart_id))
    return {
        cart_id: frozenset(event_id.decode() for event_id in members)
        for cart_id, members in zip(cart_ids, pipeline.execute(), strict=True)
    }


def mark_published(marks: dict[str, list[str]]) -> None:
    """Record events as published, per cart (the relay, right after JetStream acknowledged them)."""
    marks = {cart_id: ids for cart_id, ids in marks.items() if ids}
    if not marks:
        return
    pipeline = _redis().pipeline(transaction=False)
    for cart_id, ids in marks.items():
        pipeline.sadd(_published_key(cart_id), *ids)
        pipeline.expire(_published_key(cart_id), PUBLISHED_TTL)
    pipeline.execute()


def after_removal(removals: list[tuple[Cart, Cart, list[str]]]) -> None:
    """After the relay removed published events from idle carts: each (version before, version after
    with its new pending events, ids removed). A cart whose last known version is the one before gets the
    version after (patched from the kept entry: the relay's update sends no whole document), so its next
    write still starts from the right version; the removed ids' marks are forgotten."""
    if not removals:
        return
    redis = _redis()
    entries = redis.mget([_version_key(before.id) for before, _, _ in removals])
    pipeline = redis.pipeline(transaction=False)
    for (before, after, removed), entry in zip(removals, entries, strict=True):
        kept = _decode(before.id, entry)
        if kept is not None and kept.version == before.version:
            source = {**kept.source, **after.source}
            remember_in(
                pipeline,
                cart_from_document(
                    before.id,
                    source,
                    seq_no=after.seq_no or 0,
                    primary_term=after.primary_term or 0,
                    index=after.index or "",
                ),
                None,
            )
        if removed:
            pipeline.srem(_published_key(before.id), *removed)
    pipeline.execute()


def forget(cart_id: str) -> None:
    """The cart was deleted: nothing about it is worth keeping. Best effort."""
    try:
        _redis().delete(_version_key(cart_id), _published_key(cart_id))
    except Exception as exc:  # noqa: BLE001 - a stale entry only costs a conflict and a read
        logger.warning("cart %s: its last known version could not be forgotten (%r)", cart_id, exc)
