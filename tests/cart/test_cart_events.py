"""Cart events on the real NATS JetStream: one event per change with the right payload, published
after the write; with NATS down the requests still succeed and every event arrives once it is back
(pending in its cart document until then), none twice by id; the `cart_events` command follows and
relays."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from cart import events, relay, services, versions
from cart.selectors import get_cart
from shopcart.eventbus import EventBusUnavailable, NatsPublisher
from tests.support import unique
from tests.support.api import api_client
from tests.support.cart import make_product, make_user, stream_messages, wipe_cart
from tests.support.polling import stays_true, wait_for
from tests.support.stack import stack

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]

CART = "/api/user/cart"


def _stream() -> str:
    return str(django_settings.CART_EVENTS_STREAM)


def _prefix() -> str:
    return str(django_settings.CART_EVENTS_SUBJECT_PREFIX)


def _events(count: int, *, cart_id: str | None = None) -> list[dict[str, Any]]:
    """Wait until the stream holds `count` messages; returns their events (and checks the subjects).
    `cart_id`: a cart whose pending events should be arriving, named in a failure with the relay's state."""

    def enough() -> list[dict[str, Any]] | None:
        try:
            found = stream_messages(_stream())
        except EventBusUnavailable:  # NATS restarting: not yet
            return None
        return found if len(found) >= count else None

    def state() -> str:
        try:
            held = len(stream_messages(_stream()))
        except EventBusUnavailable as exc:
            held = f"unreadable ({exc})"
        alive = relay.relay_thread_alive()
        pending = len(_waiting_ids(cart_id)) if cart_id else "-"
        return f"stream holds {held}; relay thread alive: {alive}; still pending: {pending}"

    messages = wait_for(enough, timeout=30, describe=state)
    for message in messages:
        assert message["subject"] == f"{_prefix()}.{message['event']['type']}"
    return [message["event"] for message in messages]


def _pending_ids(cart_id: str) -> list[str]:
    return [events.entry_id(entry) for entry in events.pending_entries(get_cart(cart_id=cart_id))]


def _waiting_ids(cart_id: str) -> list[str]:
    """The cart's events not known to be published yet (those published stay in the document until its
    next write, or until the relay removes them from the idle cart)."""
    published = versions.last_known(cart_id).published
    return [event_id for event_id in _pending_ids(cart_id) if event_id not in published]


def _check_common(event: dict[str, Any], *, owner: str, user_id: int | None, started: float) -> None:
    assert uuid.UUID(event["eventId"]).version == 4
    assert event["owner"] == owner
    assert event["userId"] == user_id
    stamp = time.mktime(time.strptime(event["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert started - 5 <= stamp <= time.time() + 5


def test_every_change_publishes_one_event_with_its_payload() -> None:
    started = time.time()
    one, two = make_product(stock=20), make_product(stock=20)
    user = make_user()
    owner = f"user-{user.pk}"
    client = api_client(user)
    client.post_json(CART, {"productId": one.id, "quantity": 2})
    client.post_json(CART, {"productId": one.id, "quantity": 1})
    client.patch_json(f"{CART}/items/{one.id}", {"quantity": 5})
    client.post_json(CART, {"productId": two.id, "quantity": 4})
    client.delete(f"{CART}/items/{two.id}")
    client.post_json(CART, {"productId": two.id, "quantity": 1})
    client.delete(CART)
    # Refusals and no-ops publish nothing.
    client.post_json(CART, {"productId": one.id, "quantity": 0})
    client.post_json(CART, {"productId": one.id, "quantity": 21})
    client.delete(CART)

    found = _events(7)
    assert [(e["type"], e["productId"], e["oldQuantity"], e["newQuantity"]) for e in found] == [
        ("item_added", one.id, 0, 2),
        ("item_added", one.id, 2, 3),
        ("item_updated", one.id, 3, 5),
        ("item_added", two.id, 0, 4),
        ("item_removed", two.id, 4, 0),
        ("item_added", two.id, 0, 1),
        ("cleared", None, 6, 0),
    ]
    assert found[-1]["lines"] == [{"productId": one.id, "quantity": 5}, {"productId": two.id, "quantity": 1}]
    for event in found:
        _check_common(event, owner=owner, user_id=user.pk, started=started)
    assert len({e["eventId"] for e in found}) == 7
    stays_true(lambda: len(stream_messages(_stream())) == 7, seconds=1, why="a relay round that could publish again")
    assert len(stream_messages(_stream())) == 7  # nothing else arrives later
    assert _waiting_ids(owner) == []  # each request published its event (the relay removes it later)


def test_merge_publishes_merged_events(settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 5
    product = make_product(stock=100)
    user = make_user()
    anon = f"anon-{unique()}{unique()}"
    wipe_cart(anon)
    services.add_item(cart_id=f"user-{user.pk}", product_id=product.id, quantity=3)
    services.add_item(cart_id=anon, product_id=product.id, quantity=4)

    services.merge_anonymous_cart(anon_cart_id=anon, user_id=user.pk)

    added_user, added_anon, merged = _events(3)
    assert (added_user["owner"], added_anon["owner"], added_anon["userId"]) == (f"user-{user.pk}", anon, None)
    assert merged["type"] == "merged"
    assert (merged["owner"], merged["userId"], merged["productId"]) == (f"user-{user.pk}", user.pk, product.id)
    assert (merged["oldQuantity"], merged["newQuantity"], merged["requestedQuantity"]) == (3, 5, 4)
    assert (merged["fromCart"], merged["capped"]) == (anon, True)


def _dead_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = NatsPublisher(url="nats://127.0.0.1:1", timeout=0.3)
    monkeypatch.setattr(events, "publisher", lambda: dead)


def test_events_wait_in_their_cart_and_the_relay_command_delivers_them(monkeypatch, settings: Any) -> None:
    settings.CART_RELAY_THREAD = False
    product = make_product(stock=20)
    user = make_user()
    client = api_client(user)
    _dead_publisher(monkeypatch)
    for _ in range(3):
        assert client.post_json(CART, {"productId": product.id, "quantity": 1}).status_code == 200
    waiting = _pending_ids(f"user-{user.pk}")
    assert len(waiting) == 3
    assert stream_messages(_stream()) == []
    monkeypatch.undo()

    out = io.StringIO()
    call_command("cart_events", "--relay", "--once", stdout=out, stderr=io.StringIO())

    assert "published 3; 0 waiting" in out.getvalue()
    assert [e["eventId"] for e in _events(3)] == waiting  # in order
    assert _pending_ids(f"user-{user.pk}") == []


def test_a_re_sent_event_is_stored_once(monkeypatch, settings: Any) -> None:
    settings.CART_RELAY_THREAD = False
    product = make_product()
    user = make_user()
    client = api_client(user)
    # The ack arrived but recording the event as published was lost (say the process died in between).
    monkeypatch.setattr(versions, "settle", lambda cart, **kwargs: None)
    client.post_json(CART, {"productId": product.id, "quantity": 1})
    monkeypatch.undo()
    assert len(_waiting_ids(f"user-{user.pk}")) == 1
    assert len(_events(1)) == 1

    result = events.relay_pending(grace=0, refresh=True)

    assert (result.published, result.remaining) == (1, 0)
    assert _pending_ids(f"user-{user.pk}") == []
    assert len(_events(1)) == 1
    # The relay's publish was acknowledged (as a duplicate): the stream is final, nothing to wait for.
    assert len(stream_messages(_stream())) == 1  # JetStream dropped the duplicate message id


def test_the_follow_command_prints_the_events() -> None:
    product = make_product()
    client = api_client(make_user())
    client.post_json(CART, {"productId": product.id, "quantity": 1})
    client.post_json(CART, {"productId": product.id, "quantity": 2})
    stored = _events(2)

    out = io.StringIO()
    call_command(
        "cart_events", "--from-start", "--count", "2", "--idle-timeout", "10", stdout=out, stderr=io.StringIO()
    )

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == stored
    assert [line["seq"] for line in lines] == [1, 2]
    assert {line["subject"] for line in lines} == {f"{_prefix()}.item_added"}


@pytest.mark.slow
@pytest.mark.usefixtures("relay_thread")
def test_with_nats_stopped_requests_succeed_and_every_event_arrives_after_restart() -> None:
    products = [make_product(stock=100) for _ in range(2)]
    user = make_user()
    client = api_client(user)
    assert client.post_json(CART, {"productId": products[0].id, "quantity": 1}).status_code == 200
    before = [e["eventId"] for e in _events(1)]

    stack("stop", "nats")
    try:
        statuses = [
            client.post_json(CART, {"productId": products[0].id, "quantity": 2}).status_code,
            client.post_json(CART, {"productId": products[1].id, "quantity": 3}).status_code,
            client.patch_json(f"{CART}/items/{products[0].id}", {"quantity": 7}).status_code,
            client.delete(f"{CART}/items/{products[1].id}").status_code,
            client.post_json(CART, {"productId": products[1].id, "quantity": 1}).status_code,
            client.delete(CART).status_code,
        ]
        assert statuses == [200] * 6
        body = client.get(CART).json()
        assert body["itemCount"] == 0
        waiting = _waiting_ids(f"user-{user.pk}")
        assert len(waiting) == 6
    finally:
        stack("start", "nats")

    delivered = _events(7, cart_id=f"user-{user.pk}")  # the relay thread publishes them once NATS is back
    ids = [e["eventId"] for e in delivered]
    assert ids == before + waiting
    assert len(set(ids)) == 7
    assert [e["type"] for e in delivered] == [
        "item_added",
        "item_added",
        "item_added",
        "item_updated",
        "item_removed",
        "item_added",
        "cleared",
    ]
    wait_for(lambda: _pending_ids(f"user-{user.pk}") == [], timeout=10)
    stays_true(
        lambda: [m["event"]["eventId"] for m in stream_messages(_stream())] == ids,
        seconds=2,
        why="two more relay rounds: still no duplicate",
    )
    assert [m["event"]["eventId"] for m in stream_messages(_stream())] == ids
