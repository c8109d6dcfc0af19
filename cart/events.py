"""Cart events on NATS JetStream. The cart document is its own outbox.

A change's events are written into the cart document (`pending_events`, with `has_pending_events`)
by the same conditional write as the change itself (cart.services), so a change and its events are
stored together or not at all: no crash between two stores can separate them. They are published with
the event id as the JetStream message id (`Nats-Msg-Id`), in the cart's order, and once JetStream has
acknowledged them they are recorded as published in Redis (cart.versions), not removed by another write:

* the request that wrote them publishes them at once (`publish_due`), also older ones of the same cart
  still waiting (older than CART_RELAY_GRACE_SECONDS; a younger one is its own request's to publish);
* the next write of the cart leaves the published ones out of the document it writes anyway;
* the relay (`relay_pending`, run by the one relay leader: cart.relay) publishes what no request could
  (NATS down, the process killed after the write) and removes published events from idle carts in
  batches, each removal conditional on the version it saw.

An event may be published more than once (its publisher died between the ack and the mark, a mark was
lost with a Redis failover, two relays met): JetStream drops a re-sent message id inside the stream's
duplicate window, and a consumer recognises any duplicate by `eventId` (docs/cart.md).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from elasticsearch import NotFoundError
from elasticsearch.helpers import streaming_bulk
from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError as StreamNotFound

from cart import versions
from cart.documents import cart_from_document, carts_alias
from cart.domain import Cart
from cart.selectors import read_cart
from shopcart import es
from shopcart.eventbus import EventBusUnavailable, publisher

logger = logging.getLogger(__name__)

EVENT_TYPES = ("item_added", "item_updated", "item_removed", "cleared", "merged")


def subject_for(event_type: str, *, prefix: str | None = None) -> str:
    return f"{prefix or settings.CART_EVENTS_SUBJECT_PREFIX}.{event_type}"


def build_event(
    *,
    event_type: str,
    cart_id: str,
    user_id: int | None,
    product_id: str | None,
    old_quantity: int,
    new_quantity: int,
    **extra: Any,
) -> dict[str, Any]:
    """One event's JSON payload. `owner` is the cart id (`user-<id>` or `anon-<id>`)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown cart event type {event_type!r}")
    return {
        "eventId": str(uuid.uuid4()),
        "type": event_type,
        "owner": cart_id,
        "userId": user_id,
        "productId": product_id,
        "oldQuantity": old_quantity,
        "newQuantity": new_quantity,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **extra,
    }


_ensured_streams: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


def ensure_stream(*, stream: str | None = None, prefix: str | None = None) -> None:
    """Create the stream (subjects `<prefix>.>`) if it is missing. An existing stream is left as it is,
    so an operator's changes to it (retention, limits) are never overwritten."""
    stream = stream or settings.CART_EVENTS_STREAM
    prefix = prefix or settings.CART_EVENTS_SUBJECT_PREFIX
    if (stream, prefix) in _ensured_streams:
        return

    async def _ensure(client: Client) -> None:
        js = client.jetstream(timeout=publisher().timeout)
        try:
            await js.stream_info(stream)
        except StreamNotFound:
            await js.add_stream(
                StreamConfig(
                    name=stream,
                    subjects=[f"{prefix}.>"],
                    storage=StorageType.FILE,
                    duplicate_window=settings.CART_EVENTS_DUPLICATE_WINDOW,
                    num_replicas=settings.CART_EVENTS_STREAM_REPLICAS,
                )
            )

    publisher().run(_ensure)
    with _ensured_lock:
        _ensured_streams.add((stream, prefix))


def _forget_stream(stream: str, prefix: str) -> None:
    with _ensured_lock:
        _ensured_streams.discard((stream, prefix))


def pending_entry(event: dict[str, Any]) -> dict[str, Any]:
    """What `pending_events` holds for one event: where it goes (the stream and subject of the moment it
    happened) and when it was queued, beside the payload itself."""
    stream, prefix = settings.CART_EVENTS_STREAM, settings.CART_EVENTS_SUBJECT_PREFIX
    return {
        "stream": stream,
        "prefix": prefix,
        "subject": subject_for(event["type"], prefix=prefix),
        "queued_at": time.time(),
        "event": event,
    }


def entry_id(entry: dict[str, Any]) -> str:
    return str(entry["event"]["eventId"])


def pending_entries(cart: Cart) -> list[dict[str, Any]]:
    return list(cart.source.get("pending_events") or [])


def _publish_one(entry: dict[str, Any]) -> None:
    payload = json.dumps(entry["event"], sort_keys=True).encode()
    try:
        ensure_stream(stream=entry["stream"], prefix=entry["prefix"])
        publisher().publish(entry["subject"], payload, msg_id=entry_id(entry))
    except EventBusUnavailable:
        # Maybe the stream is gone (deleted, or NATS lost its storage): make the next try check again.
        _forget_stream(entry["stream"], entry["prefix"])
        raise


def publish(entries: Iterable[dict[str, Any]]) -> list[str]:
    """Publish in order until one fails; returns the ids JetStream acknowledged. Never raises for an
    unreachable NATS: what was not published stays pending for the relay."""
    published: list[str] = []
    for entry in entries:
        try:
            _publish_one(entry)
        except EventBusUnavailable as exc:
            logger.warning("NATS unavailable (%s); cart event(s) stay pending in their cart", exc)
            break
        published.append(entry_id(entry))
    return published


def unpublished(entries: Iterable[dict[str, Any]], published: frozenset[str]) -> list[dict[str, Any]]:
    """The entries not known to be on the stream."""
    return [entry for entry in entries if entry_id(entry) not in published]


def due(entries: list[dict[str, Any]], *, own: Iterable[str] = (), grace: float) -> list[dict[str, Any]]:
    """The entries to publish now, in the cart's order: `own` ones (the caller wrote them) whatever their
    age, others once older than `grace` seconds. The first one too young holds back those after it, so
    a cart's events reach the stream in the order they were written."""
    mine = set(own)
    cutoff = time.time() - grace
    ready = []
    for entry in entries:
        if entry_id(entry) not in mine and float(entry.get("queued_at", 0)) > cutoff:
            break
        ready.append(entry)
    return ready


def publish_due(cart: Cart, *, published: frozenset[str], own: Iterable[str] | None) -> list[str]:
    """What a request does right after its write was acknowledged: publish its own events (`own`; None:
    every pending one, e.g. a write found applied after its answer was lost) and, before them, the older
    ones of the cart still waiting. Returns the ids acknowledged (the caller records them: cart.versions)."""
    waiting = unpublished(pending_entries(cart), published)
    if not waiting:
        return []
    if own is None:
        return publish(waiting)
    return publish(due(waiting, own=own, grace=settings.CART_RELAY_GRACE_SECONDS))


# -- relay -----------------------------------------------------------------------------------------

RELAY_PAGE = 500
RELAY_LIMIT = 10_000  # carts looked at per round (a search's result window)


@dataclass(frozen=True)
class RelayResult:
    published: int = 0
    removed: int = 0  # published events removed from idle carts
    remaining: int = 0  # events still waiting to be published, in the carts this round looked at
    oldest_waiting: float | None = None  # seconds the oldest of those has waited
    carts: int = 0  # carts found with pending events
    nats_down: bool = False


@dataclass
class _Found:
    """A cart the relay's search found: the version the search saw, with its pending events."""

    cart: Cart
    updated_at: float


def _timestamp(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0


def _carts_with_pending(*, limit: int, refresh: bool, idle_for: float) -> list[_Found]:
    """The carts whose documents hold events and that nobody wrote for `idle_for` seconds (a cart being
    written publishes its waiting events with its requests: cart.write_engine), least recently written
    first. A search sees what the last refresh made visible, so a cart written within the last second is
    found the next round."""
    client = es.client()
    # The cut-off on this clock, as the writers stamp `updated_at` on theirs (date math has no milliseconds).
    before = datetime.fromtimestamp(time.time() - idle_for, UTC).isoformat()
    query = {"bool": {"filter": [{"term": {"has_pending_events": True}}, {"range": {"updated_at": {"lte": before}}}]}}
    try:
        if refresh:
            client.indices.refresh(index=carts_alias())
        found: list[_Found] = []
        while len(found) < limit:
            response = client.search(
                index=carts_alias(),
                query=query,
                sort=[{"updated_at": "asc"}],
                source=["pending_events", "updated_at"],
                seq_no_primary_term=True,
                from_=len(found),
                size=min(RELAY_PAGE, limit - len(found)),
            )
            hits = response["hits"]["hits"]
            for hit in hits:
                cart = cart_from_document(
                    hit["_id"],
                    hit["_source"],
                    seq_no=int(hit["_seq_no"]),
                    primary_term=int(hit["_primary_term"]),
                    index=str(hit["_index"]),
                )
                found.append(_Found(cart, _timestamp(hit["_source"].get("updated_at"))))
            if len(hits) < RELAY_PAGE:
                break
    except NotFoundError:  # no cart index yet: nothing pending
        return []
    return found


def _fault_mid_batch() -> None:
    """The test-only fault hook (CART_FAULT_RELAY=pause): the relay stops dead in the middle of its batch,
    with events published and neither recorded nor removed, until the test kills the process."""
    if settings.CART_FAULT_RELAY == "pause":
        sys.stderr.write(f"cart event relay paused mid-batch (CART_FAULT_RELAY), pid {os.getpid()}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)


def _publish_waiting(found: _Found, *, grace: float) -> tuple[Cart, frozenset[str], list[str], bool]:
    """Publish a cart's events that no request published. Read again first, the marks then the cart in
    real time (in this order: an event whose mark is gone is also gone from the document), so nothing
    is published from what the search saw a moment ago. Returns the cart read, its published ids, those
    this call published, and whether publishing stopped short (NATS)."""
    published = versions.published_of([found.cart.id])[found.cart.id]
    cart = read_cart(cart_id=found.cart.id)
    ready = due(unpublished(pending_entries(cart), published), grace=grace)
    ids = publish(ready)
    if ids:
        _fault_mid_batch()
        versions.mark_published({cart.id: ids})
    return cart, published | frozenset(ids), ids, len(ids) < len(ready)


def relay_pending(
    *,
    grace: float | None = None,
    refresh: bool = False,
    limit: int = RELAY_LIMIT,
    keep_going: Callable[[], bool] | None = None,
) -> RelayResult:
    """One relay round over the carts with events in their document that nobody wrote for `grace`
    seconds (None: CART_RELAY_GRACE_SECONDS; younger events and carts are their requests'), found by a
    search:

    * events no request published are published in each cart's order and recorded as published;
    * carts idle for CART_RELAY_IDLE_SECONDS lose their published events in one `_bulk` request, each
      update conditional on the version the relay saw (a cart written meanwhile keeps them: its next write
      leaves them out anyway). An explicit `grace` is the idle time too (0: everything, now).

    `refresh=True` makes the search see every write until now (operators, tests). `keep_going` is asked
    before each cart that needs publishing (the leader renews its lease there). Publishing stops for the
    round when NATS is unreachable; removing what was published goes on."""
    idle = settings.CART_RELAY_IDLE_SECONDS if grace is None else grace
    grace = settings.CART_RELAY_GRACE_SECONDS if grace is None else grace
    found = _carts_with_pending(limit=limit, refresh=refresh, idle_for=grace)
    marks = versions.published_of([item.cart.id for item in found])
    now = time.time()
    published_count, removals, waiting = 0, [], []
    nats_down = False
    for item in found:
        cart, published = item.cart, marks[item.cart.id]
        entries = pending_entries(cart)
        if not nats_down and due(unpublished(entries, published), grace=grace):
            if keep_going is not None and not keep_going():
                break
            cart, published, ids, stopped = _publish_waiting(item, grace=grace)
            published_count += len(ids)
            nats_down = stopped and not _nats_reachable()
            entries = pending_entries(cart)
            updated_at = _timestamp(cart.source.get("updated_at"))
        else:
            updated_at = item.updated_at
        left = unpublished(entries, published)
        waiting += left
        if len(left) < len(entries) and cart.exists and updated_at <= now - idle:
            removals.append((cart, left))
    removed = _remove_published(removals)
    oldest = min((float(entry.get("queued_at", now)) for entry in waiting), default=None)
    return RelayResult(
        published=published_count,
        removed=removed,
        remaining=len(waiting),
        oldest_waiting=None if oldest is None else max(0.0, now - oldest),
        carts=len(found),
        nats_down=nats_down,
    )


def _remove_published(removals: list[tuple[Cart, list[dict[str, Any]]]]) -> int:
    """Remove the published events from these carts in one `_bulk` request of conditional updates; a
    cart changed since the relay saw it answers 409 and keeps them for its next write or round."""
    if not removals:
        return 0
    by_id = {cart.id: (cart, left) for cart, left in removals}
    actions = (
        {
            "_op_type": "update",
            "_index": cart.index,
            "_id": cart.id,
            "if_seq_no": cart.seq_no,
            "if_primary_term": cart.primary_term,
            "doc": {"pending_events": left, "has_pending_events": bool(left)},
        }
        for cart, left in removals
    )
    done, removed = [], 0
    for ok, item in streaming_bulk(es.writer(), actions, chunk_size=RELAY_PAGE, raise_on_error=False):
        result = item["update"]
        if not ok:
            if result.get("status") not in (404, 409):  # gone, or written since: both fine
                logger.warning("cart %s: removing its published events failed: %s", result.get("_id"), result)
            continue
        before, left = by_id[result["_id"]]
        after = cart_from_document(
            before.id,
            {"pending_events": left, "has_pending_events": bool(left)},
            seq_no=int(result["_seq_no"]),
            primary_term=int(result["_primary_term"]),
            index=str(result["_index"]),
        )
        gone = [entry_id(entry) for entry in pending_entries(before) if entry not in left]
        done.append((before, after, gone))
        removed += len(gone)
    versions.after_removal(done)
    return removed


def _nats_reachable() -> bool:
    try:
        publisher().ping()
    except EventBusUnavailable:
        return False
    return True
