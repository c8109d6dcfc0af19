"""Cart events on NATS JetStream. The cart document is its own outbox.

A change's events are written into the cart document (`pending_events`, with `has_pending_events`)
by the same conditional write as the change itself (cart.services), so a change and its events are
stored together or not at all: no crash between two stores can separate them. They are then
published with the event id as the JetStream message id (`Nats-Msg-Id`), and removed from the document
by a conditional update once JetStream has acknowledged them:

* at once, by the request that wrote them (the fast path; also what merges and deletions do first);
* by a relay, for what a request could not publish (NATS down, the process killed after the write):
  every CART_RELAY_INTERVAL seconds in a daemon thread of each web process, and in
  `manage.py cart_events --relay`. It finds the carts with a search on `has_pending_events` (the relay
  is no request's read path) and reads each one by id in real time before publishing.

An event may be published more than once (its publisher died between the ack and the removal, a removal
lost a race, two relays met): JetStream drops a re-sent message id inside the stream's duplicate window,
and a consumer recognises any duplicate by `eventId` (docs/cart.md).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from elasticsearch import ConflictError, NotFoundError
from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError as StreamNotFound

from cart.documents import cart_writer, carts_alias
from cart.domain import Cart
from cart.selectors import get_cart
from shopcart import es
from shopcart.eventbus import EventBusUnavailable, publisher

logger = logging.getLogger(__name__)

EVENT_TYPES = ("item_added", "item_updated", "item_removed", "cleared", "merged")
# JetStream forgets message ids after this long; inside it a re-sent event is dropped by the server.
DUPLICATE_WINDOW_SECONDS = 600


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
                    duplicate_window=DUPLICATE_WINDOW_SECONDS,
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
    _remember_published(published)
    return published


# Ids this process saw JetStream acknowledge, newest last (bounded). The next write of a cart by this
# process leaves them out of `pending_events` for free, so a removal that lost a race to a concurrent
# write costs no extra round trip, and a busy cart's pending list stays short.
_PUBLISHED_REMEMBERED = 10_000
_published_ids: OrderedDict[str, None] = OrderedDict()
_published_lock = threading.Lock()


def _remember_published(ids: list[str]) -> None:
    with _published_lock:
        for event_id in ids:
            _published_ids[event_id] = None
        while len(_published_ids) > _PUBLISHED_REMEMBERED:
            _published_ids.popitem(last=False)


def still_pending(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries not known (to this process) to be on the stream already."""
    with _published_lock:
        return [entry for entry in entries if entry_id(entry) not in _published_ids]


def _clear(cart: Cart, published: set[str], *, attempts: int) -> Cart:
    """Remove the published events from the cart, conditionally on the version read. On a conflict,
    re-read and remove only those ids again (another write may have added events meanwhile). Returns the
    cart as cleared when the first attempt succeeded on that version, else the cart as given: a failed
    removal only means the relay publishes them again, and JetStream drops the duplicates."""
    current = cart
    for attempt in range(attempts):
        remaining = [entry for entry in pending_entries(current) if entry_id(entry) not in published]
        if len(remaining) == len(pending_entries(current)):
            return cart  # someone else removed them already
        fields = {"pending_events": remaining, "has_pending_events": bool(remaining)}
        try:
            response = cart_writer().update(
                index=carts_alias(),
                id=current.id,
                doc=fields,
                if_seq_no=current.seq_no,
                if_primary_term=current.primary_term,
            )
        except ConflictError:
            if attempt + 1 < attempts:
                current = get_cart(cart_id=cart.id)
                if not current.exists:
                    return cart
            continue
        except NotFoundError:
            return cart
        except Exception as exc:
            if not es.is_unavailable(exc):
                raise
            logger.warning("could not remove published events from cart %s (%r); the relay will", cart.id, exc)
            return cart
        if current is not cart:
            return cart
        return replace(
            cart,
            seq_no=int(response["_seq_no"]),
            primary_term=int(response["_primary_term"]),
            source={**cart.source, **fields},
        )
    return cart


class Published(NamedTuple):
    cart: Cart  # as after the removal (or as given, when nothing was removed)
    ids: list[str]  # acknowledged by JetStream
    stopped: bool  # an event due was not published (NATS unreachable, or its stream)


def publish_pending(
    *, cart: Cart, own: Iterable[str] = (), grace: float | None = 0.0, clear_attempts: int = 3
) -> Published:
    """Publish the cart's pending events, then remove them from it. `own`: ids of events this caller
    wrote, published whatever their age; others only once older than `grace` seconds (None: the
    CART_RELAY_GRACE_SECONDS setting), which leaves them to the request that is publishing them now.
    Order is kept: an event too young to publish holds back the ones after it. `clear_attempts`: the
    conditional removals tried (a conflict re-reads the cart); a request tries once and leaves the rest
    to the next write or the relay, instead of adding round trips to a contended cart."""
    entries = pending_entries(cart)
    if not entries:
        return Published(cart, [], False)
    if grace is None:
        grace = settings.CART_RELAY_GRACE_SECONDS
    mine = set(own)
    cutoff = time.time() - grace
    due = []
    for entry in entries:
        if entry_id(entry) not in mine and float(entry.get("queued_at", 0)) > cutoff:
            break
        due.append(entry)
    published = publish(due)
    stopped = len(published) < len(due)
    if not published:
        return Published(cart, [], stopped)
    return Published(_clear(cart, set(published), attempts=clear_attempts), published, stopped)


# -- relay -----------------------------------------------------------------------------------------

RELAY_BATCH = 200


@dataclass(frozen=True)
class RelayResult:
    published: int = 0
    remaining: int = 0  # events still pending in the carts this round looked at
    nats_down: bool = False


def _carts_with_pending(*, limit: int, refresh: bool) -> list[str]:
    client = es.client()
    try:
        if refresh:
            client.indices.refresh(index=carts_alias())
        response = client.search(
            index=carts_alias(), query={"term": {"has_pending_events": True}}, size=limit, source=False
        )
    except NotFoundError:  # no cart index yet: nothing pending
        return []
    return [hit["_id"] for hit in response["hits"]["hits"]]


def relay_pending(*, limit: int = RELAY_BATCH, grace: float | None = None, refresh: bool = False) -> RelayResult:
    """One relay round: every cart with pending events (found by a search, so a write from the last
    refresh interval is found the next round; `refresh=True` makes the search see everything now), read
    by id in real time, its due events published and removed. Stops when NATS is unreachable."""
    published = remaining = 0
    for cart_id in _carts_with_pending(limit=limit, refresh=refresh):
        cart = get_cart(cart_id=cart_id)
        waiting = len(pending_entries(cart))
        if not waiting:
            continue
        result = publish_pending(cart=cart, grace=grace)
        published += len(result.ids)
        remaining += waiting - len(result.ids)
        if result.stopped and not _nats_reachable():
            return RelayResult(published=published, remaining=remaining, nats_down=True)
    return RelayResult(published=published, remaining=remaining)


def pending_count(*, refresh: bool = True) -> int:
    """How many events wait in all carts (operators, tests)."""
    total = 0
    for cart_id in _carts_with_pending(limit=10_000, refresh=refresh):
        total += len(pending_entries(get_cart(cart_id=cart_id)))
    return total


def _nats_reachable() -> bool:
    try:
        publisher().ping()
    except EventBusUnavailable:
        return False
    return True


_relay_lock = threading.Lock()
_relay_thread: threading.Thread | None = None
_relay_pid: int | None = None


def _relay_loop() -> None:
    while True:
        time.sleep(max(0.2, settings.CART_RELAY_INTERVAL))
        if not settings.CART_RELAY_THREAD:
            continue
        try:
            relay_pending()
        except Exception:  # the loop must outlive any outage; it tries again next round
            logger.debug("cart event relay round failed", exc_info=True)


def ensure_relay_thread() -> None:
    """Start this process's relay thread once (again after a fork: threads do not survive it). Called by
    each gunicorn worker at start (shopcart/gunicorn_conf.py) and by every cart write."""
    global _relay_thread, _relay_pid
    if not settings.CART_RELAY_THREAD:
        return
    with _relay_lock:
        if _relay_thread is not None and _relay_pid == os.getpid() and _relay_thread.is_alive():
            return
        _relay_thread = threading.Thread(target=_relay_loop, name="cart-event-relay", daemon=True)
        _relay_pid = os.getpid()
        _relay_thread.start()
