"""Cart events on NATS JetStream, through a durable outbox in Redis.

After a cart write is acknowledged by Elasticsearch, its events are appended to a Redis list (the
outbox; Redis runs with appendonly, so it survives a restart) and then published with the event id
as the JetStream message id. An event leaves the outbox only once JetStream has acknowledged it. If
NATS is unreachable the request still succeeds and the event waits in the outbox; a relay publishes
what is waiting, oldest first:

* opportunistically, after a request's own events were published (NATS is evidently back);
* every CART_RELAY_INTERVAL seconds in a daemon thread each process starts on its first cart write;
* in `manage.py cart_events --relay`, for operators or a dedicated relay process.

The same event may be published twice (its publisher crashed between the ack and the removal, or an
ack was lost); JetStream drops a re-sent message id inside the stream's duplicate window, and
consumers can always recognise a duplicate by `eventId`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from django.core.cache import cache
from django_redis import get_redis_connection
from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError as StreamNotFound

from cart import conf
from shopcart.eventbus import EventBusUnavailable, publisher

logger = logging.getLogger(__name__)

EVENT_TYPES = ("item_added", "item_updated", "item_removed", "cleared", "merged")
# JetStream forgets message ids after this long; inside it a re-sent event is dropped by the server.
DUPLICATE_WINDOW_SECONDS = 600
RELAY_BATCH = 500


def subject_for(event_type: str, *, prefix: str | None = None) -> str:
    return f"{prefix or conf.subject_prefix()}.{event_type}"


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


def outbox_key() -> str:
    # Through make_key, so the cache KEY_PREFIX (per environment, per test run) is in front.
    return cache.make_key(str(conf.get("CART_OUTBOX_KEY")))


def _redis() -> Any:
    return get_redis_connection("default")


# -- publishing ------------------------------------------------------------------------------------

_ensured_streams: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


def ensure_stream(*, stream: str | None = None, prefix: str | None = None) -> None:
    """Create the stream (subjects `<prefix>.>`) if it is missing. An existing stream is left as it is,
    so an operator's changes to it (retention, limits) are never overwritten."""
    stream = stream or conf.events_stream()
    prefix = prefix or conf.subject_prefix()
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
                    num_replicas=int(conf.get("CART_EVENTS_STREAM_REPLICAS")),
                )
            )

    publisher().run(_ensure)
    with _ensured_lock:
        _ensured_streams.add((stream, prefix))


def _forget_stream(stream: str, prefix: str) -> None:
    with _ensured_lock:
        _ensured_streams.discard((stream, prefix))


@dataclass(frozen=True)
class OutboxEntry:
    raw: str  # exactly as stored in Redis: LREM removes by value
    stream: str
    prefix: str
    subject: str
    queued_at: float
    event: dict[str, Any]

    @classmethod
    def new(cls, event: dict[str, Any]) -> OutboxEntry:
        stream, prefix = conf.events_stream(), conf.subject_prefix()
        body = {
            "stream": stream,
            "prefix": prefix,
            "subject": subject_for(event["type"], prefix=prefix),
            "queued_at": time.time(),
            "event": event,
        }
        return cls.parse(json.dumps(body, sort_keys=True, separators=(",", ":")))

    @classmethod
    def parse(cls, raw: str | bytes) -> OutboxEntry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        body = json.loads(text)
        return cls(
            raw=text,
            stream=body["stream"],
            prefix=body["prefix"],
            subject=body["subject"],
            queued_at=float(body["queued_at"]),
            event=body["event"],
        )


def _publish(entry: OutboxEntry) -> int:
    """Publish one entry; returns its stream sequence. Raises EventBusUnavailable."""
    payload = json.dumps(entry.event, sort_keys=True).encode()
    try:
        ensure_stream(stream=entry.stream, prefix=entry.prefix)
        return publisher().publish(entry.subject, payload, msg_id=entry.event["eventId"])
    except EventBusUnavailable:
        # Maybe the stream is gone (deleted, or NATS lost its storage): make the next try check again.
        _forget_stream(entry.stream, entry.prefix)
        raise


def emit(events: Iterable[dict[str, Any]]) -> None:
    """Record events in the outbox, then publish them. Called after the cart write succeeded; never
    raises for an unreachable NATS (the events then wait in the outbox for the relay)."""
    entries = [OutboxEntry.new(event) for event in events]
    if not entries:
        return
    queued = True
    try:
        _redis().rpush(outbox_key(), *[entry.raw for entry in entries])
    except redis.exceptions.RedisError:
        # The cart write already happened; publishing directly is the best left to do.
        queued = False
        logger.exception("cart outbox unavailable; publishing %d event(s) without it", len(entries))
    _ensure_relay_thread()

    published_all = True
    pending: int | None = None
    for entry in entries:
        try:
            _publish(entry)
        except EventBusUnavailable as exc:
            published_all = False
            if queued:
                logger.warning("NATS unavailable (%s); %d cart event(s) wait in the outbox", exc, len(entries))
            else:
                logger.error("cart event %s lost: neither Redis nor NATS is reachable", entry.event["eventId"])
            # Later events wait behind this one, in order.
            if queued:
                break
            continue
        if queued:
            pending = _remove(entry)
    if published_all and queued:
        # NATS is up: deliver anything older that an earlier request could not.
        try:
            if pending is None:
                pending = pending_count()
            if pending:
                relay_outbox(limit=50, wait_for_lock=False)
        except redis.exceptions.RedisError:
            logger.warning("cart outbox relay skipped: Redis unavailable", exc_info=True)


def _remove(entry: OutboxEntry) -> int | None:
    """Remove an acknowledged entry. Returns how many entries still wait, read in the same round trip
    (so emit needs no separate LLEN: one Redis round trip fewer per cart write); None if Redis failed."""
    key = outbox_key()
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.lrem(key, 1, entry.raw)
        pipe.llen(key)
        _, pending = pipe.execute()
    except redis.exceptions.RedisError:
        # Left in the outbox, it is published again later; JetStream drops the duplicate id.
        logger.warning("could not remove cart event %s from the outbox", entry.event["eventId"])
        return None
    return int(pending)


# -- relay -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayResult:
    published: int = 0
    skipped: int = 0
    remaining: int = 0
    nats_down: bool = False
    busy: bool = False


def pending_count() -> int:
    return int(_redis().llen(outbox_key()))


def relay_outbox(*, limit: int = RELAY_BATCH, grace: float | None = None, wait_for_lock: bool = False) -> RelayResult:
    """Publish waiting events, oldest first; each leaves the outbox once acknowledged.

    Events younger than `grace` seconds (CART_OUTBOX_GRACE_SECONDS) are left to the request that is
    publishing them at this moment, which keeps duplicates rare. One relay runs at a time per outbox
    (a Redis lock across processes); a second caller returns at once with busy=True."""
    if grace is None:
        grace = float(conf.get("CART_OUTBOX_GRACE_SECONDS"))
    connection = _redis()
    key = outbox_key()
    lock = connection.lock(f"{key}:relay-lock", timeout=60, blocking=wait_for_lock, blocking_timeout=10)
    if not lock.acquire():
        return RelayResult(busy=True, remaining=int(connection.llen(key)))
    published = skipped = 0
    nats_down = False
    try:
        now = time.time()
        for raw in connection.lrange(key, 0, limit - 1):
            try:
                entry = OutboxEntry.parse(raw)
            except (ValueError, KeyError, TypeError):
                # Unreadable: park it where an operator can look, instead of blocking the outbox.
                connection.rpush(f"{key}:dead", raw)
                connection.lrem(key, 1, raw)
                logger.error("moved an unreadable cart outbox entry to %s:dead", key)
                continue
            if now - entry.queued_at < grace:
                skipped += 1
                continue
            try:
                _publish(entry)
            except EventBusUnavailable:
                if _nats_reachable():
                    skipped += 1  # a problem with this entry only (say its stream); try the rest
                    continue
                nats_down = True
                break
            connection.lrem(key, 1, entry.raw)
            published += 1
    finally:
        # LockError: it expired meanwhile; another relay may be running, and duplicates are dropped by id.
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
    return RelayResult(published=published, skipped=skipped, remaining=int(connection.llen(key)), nats_down=nats_down)


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
        time.sleep(max(0.2, float(conf.get("CART_RELAY_INTERVAL"))))
        if not conf.get("CART_RELAY_THREAD"):
            continue
        try:
            if pending_count():
                relay_outbox()
        except Exception:  # the loop must outlive any outage; it tries again next round
            logger.debug("cart outbox relay round failed", exc_info=True)


def _ensure_relay_thread() -> None:
    """Start this process's relay thread once (again after a fork: threads do not survive it)."""
    global _relay_thread, _relay_pid
    if not conf.get("CART_RELAY_THREAD"):
        return
    with _relay_lock:
        if _relay_thread is not None and _relay_pid == os.getpid() and _relay_thread.is_alive():
            return
        _relay_thread = threading.Thread(target=_relay_loop, name="cart-outbox-relay", daemon=True)
        _relay_pid = os.getpid()
        _relay_thread.start()
