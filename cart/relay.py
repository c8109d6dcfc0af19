"""The one relay leader of the shop: a lease in Redis decides which process runs the event relay
(cart.events.relay_pending), so the carts index is searched by one process, not by every worker.

Every web worker (shopcart/gunicorn_conf.py), `manage.py runserver` and `manage.py cart_events --relay`
runs a candidate thread. Every CART_RELAY_INTERVAL seconds it asks Redis for the lease (one command:
take it if free, extend it if held by this process): the holder runs a relay round; the others do
nothing else. The lease lasts CART_RELAY_LEASE_SECONDS and is extended every round (and between carts a
long round publishes), so a holder that dies, hangs or loses Redis is replaced within that time. Two
leaders at once (a Redis failover losing the lease, a hung holder waking up) are harmless, only wasteful:
every removal is conditional on the version seen, and JetStream drops an event published twice.

What the leader saw in its last round (events waiting, the oldest one's age, the carts with events,
what it published and removed) is kept beside the lease, for /readyz (`status`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection

from cart import events
from cart.documents import carts_alias

logger = logging.getLogger(__name__)

# Take the lease if nobody holds it, extend it if we do; 1 if we hold it now.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# How often a failure that goes on is logged again (the first one is logged at once).
REPEAT_WARNING_SECONDS = 60.0


def _redis() -> Any:
    return get_redis_connection("default")


def _lease_key() -> str:
    return cache.make_key(f"cart:relay:lease:{carts_alias()}")


def _status_key() -> str:
    return cache.make_key(f"cart:relay:status:{carts_alias()}")


class Lease:
    """This process's claim on the relay lease."""

    def __init__(self, holder: str) -> None:
        self.holder = holder

    def hold(self) -> bool:
        """Take or extend the lease; True while this process holds it."""
        milliseconds = int(settings.CART_RELAY_LEASE_SECONDS * 1000)
        return bool(_redis().eval(_HOLD, 1, _lease_key(), self.holder, milliseconds))

    def release(self) -> None:
        _redis().eval(_RELEASE, 1, _lease_key(), self.holder)


def new_holder(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _record(holder: str, result: events.RelayResult) -> None:
    status = {
        "holder": holder,
        "at": f"{time.time():.3f}",
        "waiting": result.remaining,
        "oldest_waiting": "" if result.oldest_waiting is None else f"{result.oldest_waiting:.3f}",
        "carts": result.carts,
        "published": result.published,
        "removed": result.removed,
        "nats_down": int(result.nats_down),
    }
    pipeline = _redis().pipeline(transaction=False)
    pipeline.hset(_status_key(), mapping=status)
    pipeline.expire(_status_key(), max(60, int(10 * settings.CART_RELAY_LEASE_SECONDS)))
    pipeline.execute()


def status() -> dict[str, Any]:
    """The relay as every replica sees it: who holds the lease (None: nobody, the relay is not running) and
    what its last round found: events waiting to be published and how long the oldest one has waited."""
    pipeline = _redis().pipeline(transaction=False)
    pipeline.get(_lease_key())
    pipeline.pttl(_lease_key())
    pipeline.hgetall(_status_key())
    holder, ttl, last = pipeline.execute()
    last = {key.decode(): value.decode() for key, value in last.items()}
    report: dict[str, Any] = {
        "leader": holder.decode() if holder else None,
        "lease_expires_in_s": round(ttl / 1000, 1) if holder and ttl and ttl > 0 else None,
    }
    if last:
        age = time.time() - float(last["at"])
        oldest = last.get("oldest_waiting")
        report |= {
            "waiting": int(last["waiting"]),
            "oldest_waiting_s": round(float(oldest) + age, 1) if oldest else None,
            "carts_with_events": int(last["carts"]),
            "last_round_s_ago": round(age, 1),
            "last_round_by": last["holder"],
            "nats_down": last.get("nats_down") == "1",
        }
    return report


class _Warnings:
    """Log a relay failure at WARNING when it starts, again every REPEAT_WARNING_SECONDS while it lasts,
    and say when it is over: an operator sees an outage without a line per round."""

    def __init__(self) -> None:
        self.failing_since: float | None = None
        self.last_logged = 0.0

    def failed(self, what: str) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = self.last_logged = now
            logger.warning("cart event relay: %s failed", what, exc_info=True)
        elif now - self.last_logged >= REPEAT_WARNING_SECONDS:
            self.last_logged = now
            logger.warning(
                "cart event relay: %s still failing for %.0fs", what, now - self.failing_since, exc_info=True
            )

    def ok(self) -> None:
        if self.failing_since is not None:
            logger.warning("cart event relay works again after %.0fs", time.monotonic() - self.failing_since)
            self.failing_since = None


def run_round(lease: Lease, warnings: _Warnings) -> bool:
    """One turn of a candidate: hold the lease or not; if held, one relay round. True if it led."""
    try:
        if not lease.hold():
            warnings.ok()
            return False
    except Exception:  # noqa: BLE001 - logged (warnings.failed); the loop outlives any outage
        warnings.failed("taking the lease (Redis)")
        return False
    try:
        result = events.relay_pending(keep_going=lease.hold)
        _record(lease.holder, result)
    except Exception:  # noqa: BLE001 - logged (warnings.failed); the next round tries again
        warnings.failed("a round")
        return True
    if result.nats_down:
        warnings.failed(f"publishing ({result.remaining} events waiting in their carts; NATS unreachable)")
    else:
        warnings.ok()
    return True


def run_forever(*, role: str, interval: float | None = None, stop: threading.Event | None = None) -> None:
    """A candidate's loop (the relay thread of a web process, or `manage.py cart_events --relay`), until
    `stop` is set."""
    lease = Lease(new_holder(role))
    _leases.append(lease)
    warnings = _Warnings()
    stop = stop or threading.Event()
    held = False
    try:
        while not stop.wait(max(0.1, settings.CART_RELAY_INTERVAL if interval is None else interval)):
            if not settings.CART_RELAY_THREAD and role == "worker":
                if held:  # turned off (a test's settings): let another process lead at once
                    lease.release()
                    held = False
                continue
            held = run_round(lease, warnings)
    finally:
        if held:
            lease.release()


_thread_lock = threading.Lock()
_thread: threading.Thread | None = None
_thread_pid: int | None = None
_stop = threading.Event()
_leases: list[Lease] = []  # of this process's candidates, to give the lease up on a graceful exit


def release_leases() -> None:
    """On a graceful stop (gunicorn's worker_exit): give the lease up, so another process leads at once
    rather than after CART_RELAY_LEASE_SECONDS. Best effort."""
    for lease in _leases:
        try:
            lease.release()
        except Exception as exc:  # noqa: BLE001 - the lease expires by itself
            logger.info("cart event relay: could not give the lease up (%r)", exc)


def ensure_relay_thread() -> None:
    """Start this process's candidate thread once (again after a fork: threads do not survive it). Called
    by each gunicorn worker at start (shopcart/gunicorn_conf.py) and by runserver (cart.apps)."""
    global _thread, _thread_pid
    if not settings.CART_RELAY_THREAD:
        return
    with _thread_lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(
            target=run_forever, kwargs={"role": "worker", "stop": _stop}, name="cart-event-relay", daemon=True
        )
        _thread_pid = os.getpid()
        _thread.start()


def stop_relay_thread() -> None:
    """Stop this process's candidate thread (it gives the lease up if it holds it): tests that run one."""
    global _thread
    with _thread_lock:
        _stop.set()
        if _thread is not None:
            _thread.join(timeout=30)
        _thread = None


def relay_thread_alive() -> bool:
    return _thread is not None and _thread_pid == os.getpid() and _thread.is_alive()
