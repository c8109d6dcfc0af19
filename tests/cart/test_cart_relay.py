"""The one relay leader, with real processes: `manage.py cart_events --relay` candidates for the lease in
Redis, on the real Elasticsearch and NATS. A leader killed in the middle of its batch (events published,
neither recorded nor removed) is replaced within the lease's time, and every event reaches the stream
exactly once, in its cart's order; /readyz names the leader and the backlog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from cart import events, relay, services, versions
from cart.documents import carts_alias
from cart.selectors import read_cart
from shopcart import es
from shopcart.eventbus import NatsPublisher
from tests.support import ROOT, unique
from tests.support.cart import make_product, stream_messages, wipe_cart
from tests.support.polling import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]

CARTS = 6
LEASE_SECONDS = 2.0


def _stream_events() -> list[dict[str, Any]]:
    return [m["event"] for m in stream_messages(str(django_settings.CART_EVENTS_STREAM))]


@pytest.fixture
def waiting_carts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Carts with two events each that no request could publish (NATS unreachable for their requests)."""
    product = make_product(stock=100)
    dead = NatsPublisher(url="nats://127.0.0.1:1", timeout=0.3)
    monkeypatch.setattr(events, "publisher", lambda: dead)
    carts: dict[str, list[str]] = {}
    for _ in range(CARTS):
        cart_id = f"anon-{unique()}{unique()}"
        wipe_cart(cart_id)
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
        carts[cart_id] = [events.entry_id(entry) for entry in events.pending_entries(read_cart(cart_id=cart_id))]
        assert len(carts[cart_id]) == 2
    monkeypatch.undo()
    return carts


def _candidate(tmp_path: Path, name: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{name}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
        "SHOPCART_TEST_RUN_ID": django_settings.TEST_RUN_ID,  # the run's indices and cache keys
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CART_RELAY_INTERVAL": "0.3",
        "CART_RELAY_GRACE_SECONDS": "0",
        "CART_RELAY_LEASE_SECONDS": str(LEASE_SECONDS),
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(  # our own virtualenv's python, the project's manage.py
            [sys.executable, "manage.py", "cart_events", "--relay"], cwd=ROOT, env=environment, stderr=out, stdout=out
        )
    return process, log


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # the command gives the lease up on Ctrl-C
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_relay_leader_killed_mid_batch_is_replaced_and_every_event_arrives_once(
    waiting_carts: dict[str, list[str]], tmp_path: Path
) -> None:
    expected = {event_id for ids in waiting_carts.values() for event_id in ids}
    leader, leader_log = _candidate(tmp_path, "leader", CART_FAULT_RELAY="pause")
    successor = None
    try:
        # The leader publishes the first cart's events, then stops dead before recording or removing them.
        wait_for(lambda: b"paused mid-batch" in leader_log.read_bytes(), timeout=60, describe=leader_log.read_text)
        published_by_leader = {event["eventId"] for event in _stream_events()}
        assert published_by_leader, "the leader published part of its batch"
        assert published_by_leader < expected, "and stopped in the middle of it"
        assert relay.status()["leader"].startswith(f"cart_events@{os.uname().nodename}:{leader.pid}:")
        os.kill(leader.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert leader.wait(timeout=15) == -signal.SIGKILL

        successor, successor_log = _candidate(tmp_path, "successor")
        wait_for(
            lambda: f":{successor.pid}:" in (relay.status()["leader"] or ""),
            timeout=LEASE_SECONDS + 10,
            describe=successor_log.read_text,
        )
        takeover = time.monotonic() - killed

        def delivered() -> bool:
            on_stream = {event["eventId"] for event in _stream_events()}
            cleared = all(not events.pending_entries(read_cart(cart_id=cart_id)) for cart_id in waiting_carts)
            return on_stream >= expected and cleared

        wait_for(delivered, timeout=30, describe=successor_log.read_text)
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()
        if successor is not None:
            _stop(successor)

    stream = _stream_events()
    ids = [event["eventId"] for event in stream]
    assert sorted(ids) == sorted(expected)  # every event once: the batch the leader published, sent again
    # by its successor (nothing recorded it), was dropped by JetStream by its message id
    for cart_id, cart_ids in waiting_carts.items():
        assert [event["eventId"] for event in stream if event["owner"] == cart_id] == cart_ids  # in order
        assert not versions.last_known(cart_id).published - set(cart_ids)
    assert takeover <= LEASE_SECONDS + 3, f"taken over {takeover:.1f}s after the leader died"
    print(f"\nrelay leader killed mid-batch: the successor led {takeover:.1f}s after the kill; {len(ids)} events once")


def test_readyz_names_the_relay_leader_and_the_backlog(
    waiting_carts: dict[str, list[str]], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NATS still unreachable for the relay: the leader's round leaves the events waiting, and every
    replica's /readyz says who leads, how many wait and for how long (readiness itself is not judged)."""
    settings.CART_RELAY_GRACE_SECONDS = 0
    es.client().indices.refresh(index=carts_alias())  # the relay's search sees them this round
    dead = NatsPublisher(url="nats://127.0.0.1:1", timeout=0.3)
    monkeypatch.setattr(events, "publisher", lambda: dead)
    lease = relay.Lease(relay.new_holder("test"))
    assert lease.hold()
    try:
        relay.run_round(lease, relay._Warnings())
        response = Client().get("/readyz")
    finally:
        lease.release()
    assert response.status_code == 200
    report = response.json()["cart_events"]
    assert report["leader"] == lease.holder
    assert report["last_round_by"] == lease.holder
    assert report["waiting"] >= 2 * CARTS
    assert report["oldest_waiting_s"] > 0
    assert report["carts_with_events"] >= CARTS
    assert report["nats_down"] is True
    assert Client().get("/readyz").json()["cart_events"]["leader"] is None  # given up
    monkeypatch.undo()
    assert events.relay_pending(grace=0, refresh=True).remaining == 0  # nothing left for later tests
