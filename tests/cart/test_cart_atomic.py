"""A cart change and its event are one write; a lost answer is resolved, not guessed; an idempotency key
makes a retry safe. On the real Elasticsearch and NATS, and a real gunicorn worker SIGKILLed right after
Elasticsearch acknowledged its write (the test-only hook CART_FAULT_AFTER_WRITE=kill)."""

from __future__ import annotations

import http.client
import json
import os
import re
from pathlib import Path
from typing import Any

import elastic_transport
import pytest
from django.conf import settings as django_settings
from django.test import Client
from elasticsearch import ApiError

from cart import events, services, versions, write_engine
from cart.selectors import get_cart
from shopcart import es
from shopcart.eventbus import NatsPublisher
from tests.support import unique
from tests.support.api import api_client
from tests.support.cart import make_product, make_user, stream_messages, wipe_cart
from tests.support.es import api_error
from tests.support.gunicorn import gunicorn, manage, user_with_token
from tests.support.polling import stays_true, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]

CART = "/api/user/cart"


def _stream() -> str:
    return str(django_settings.CART_EVENTS_STREAM)


def _stream_ids() -> list[str]:
    return [message["event"]["eventId"] for message in stream_messages(_stream())]


def _pending_ids(cart_id: str) -> list[str]:
    return [events.entry_id(entry) for entry in events.pending_entries(get_cart(cart_id=cart_id))]


def _quantity(cart_id: str, product_id: str) -> int:
    line = get_cart(cart_id=cart_id).line(product_id)
    return line.quantity if line else 0


def _dead_nats(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = NatsPublisher(url="nats://127.0.0.1:1", timeout=0.3)
    monkeypatch.setattr(events, "publisher", lambda: dead)


# -- one write ---------------------------------------------------------------------------------------


def test_the_event_is_written_with_the_change_and_relayed_once(monkeypatch, settings: Any) -> None:
    settings.CART_RELAY_THREAD = False
    product = make_product()
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    _dead_nats(monkeypatch)

    services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)

    stored = get_cart(cart_id=cart_id)
    [entry] = events.pending_entries(stored)
    assert stored.source["has_pending_events"] is True
    assert (entry["event"]["type"], entry["event"]["newQuantity"]) == ("item_added", 2)
    assert entry["subject"] == f"{settings.CART_EVENTS_SUBJECT_PREFIX}.item_added"
    assert _stream_ids() == []
    monkeypatch.undo()

    first = events.relay_pending(grace=0, refresh=True)
    again = events.relay_pending(grace=0, refresh=True)

    assert (first.published, first.remaining, again.published) == (1, 0, 0)
    assert _stream_ids() == [entry["event"]["eventId"]]
    cleared = get_cart(cart_id=cart_id)
    assert (events.pending_entries(cleared), cleared.source["has_pending_events"]) == ([], False)


def test_the_request_publishes_its_own_event_at_once_and_the_next_write_leaves_it_out(settings: Any) -> None:
    settings.CART_RELAY_THREAD = False  # no relay: the requests alone did it
    product = make_product()
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)

    written = services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)

    [first] = _stream_ids()
    # Published at once and recorded as published where every replica sees it, without a second write: the
    # cart as answered is the version stored, so its summary is cached under the key a read finds.
    assert written.seq_no == get_cart(cart_id=cart_id).seq_no
    assert _pending_ids(cart_id) == [first]
    assert versions.last_known(cart_id).published == {first}

    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)

    second = _stream_ids()[1]
    assert _pending_ids(cart_id) == [second]  # the published event left with the next write
    assert versions.last_known(cart_id).published == {second}  # and its mark with it


@pytest.fixture(params=["relay-command", "relay-thread"])
def killing_server(request: pytest.FixtureRequest, tmp_path: Path, settings: Any, own_database_url: str) -> Any:
    """gunicorn whose workers SIGKILL themselves right after each acknowledged cart write; one user with
    a token. `relay-command`: no relay thread anywhere, so only the relay command the test runs can
    publish; `relay-thread`: the workers' relay threads (the respawned worker's) publish on their own."""
    settings.CART_RELAY_THREAD = False  # never this test process
    threads = request.param == "relay-thread"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
        "SHOPCART_TEST_RUN_ID": settings.TEST_RUN_ID,
        "DATABASE_URL": own_database_url,
        "CART_EVENTS_STREAM": settings.CART_EVENTS_STREAM,
        "CART_EVENTS_SUBJECT_PREFIX": settings.CART_EVENTS_SUBJECT_PREFIX,
        "CART_RELAY_THREAD": "true" if threads else "false",
        "CART_RELAY_INTERVAL": "0.3",
        "CART_RELAY_GRACE_SECONDS": "3",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
    }
    user_id, token = user_with_token(env=env, email="kill@example.com")
    with gunicorn(env={**env, "CART_FAULT_AFTER_WRITE": "kill"}, log_path=tmp_path / "gunicorn.log") as port:
        yield {
            "port": port,
            "token": token,
            "cart_id": f"user-{user_id}",
            "env": env,
            "log": tmp_path / "gunicorn.log",
            "relay": request.param,
        }


@pytest.mark.slow
def test_a_worker_killed_right_after_its_write_leaves_the_change_and_exactly_one_event(killing_server) -> None:
    server = killing_server
    product = make_product()
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    body = json.dumps({"productId": product.id, "quantity": 2})
    headers = {"Authorization": f"Bearer {server['token']}", "Content-Type": "application/json"}

    connection.request("POST", CART, body=body, headers=headers)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.getresponse()  # the worker died before answering

    # The change is stored, and its event with it, unpublished: the kill came before any publishing
    # (and the relay's grace period keeps it from the stream for a moment).
    assert _quantity(server["cart_id"], product.id) == 2
    [event_id] = _pending_ids(server["cart_id"])
    assert _stream_ids() == []
    assert "SIGKILL" in server["log"].read_text()

    if server["relay"] == "relay-command":
        # Another process, the relay command, publishes it; a second relay finds nothing left to send.
        stays_true(lambda: _stream_ids() == [], seconds=1, why="the relay's grace period: nothing else publishes it")
        assert _stream_ids() == []  # nothing else publishes it
        assert "published 1; 0 waiting" in manage("cart_events", "--relay", "--once", env=server["env"])
        assert "published 0; 0 waiting" in manage("cart_events", "--relay", "--once", env=server["env"])
    else:
        # The worker gunicorn started in place of the killed one relays it, with no request.
        wait_for(lambda: _stream_ids() == [event_id] and _pending_ids(server["cart_id"]) == [], timeout=20)
        stays_true(lambda: _stream_ids() == [event_id], seconds=1, why="more relay rounds: nothing published twice")

    messages = stream_messages(_stream())
    assert [m["event"]["eventId"] for m in messages] == [event_id]
    assert (messages[0]["event"]["type"], messages[0]["event"]["newQuantity"]) == ("item_added", 2)
    assert _pending_ids(server["cart_id"]) == []
    print(f"\nkill after write ({server['relay']}): quantity 2 stored, event {event_id} on the stream exactly once")


# -- lost answers ------------------------------------------------------------------------------------


class _LosingWriter:
    """The real cart writer, except that the answer to the next `index` (a cart write) is lost: after
    the write really went through (`after=True`), or before it was sent (`after=False`)."""

    def __init__(self, error: Exception, *, after: bool = True, times: int = 1) -> None:
        self.real = es.writer()
        self.error = error
        self.after = after
        self.left = times

    def index(self, **kwargs: Any) -> Any:
        if self.left <= 0:
            return self.real.index(**kwargs)
        self.left -= 1
        if self.after:
            self.real.index(**kwargs)
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize(
    "error",
    [
        elastic_transport.ConnectionError("connection reset after the write"),
        elastic_transport.ConnectionTimeout("read timed out after the write"),
        api_error(ApiError, 502, "node_not_connected_exception"),
    ],
    ids=["connection-error", "timeout", "502-node-not-connected"],
)
def test_a_write_whose_answer_was_lost_is_found_applied_once(monkeypatch, error: Exception) -> None:
    product = make_product()
    user = make_user()
    cart_id = f"user-{user.pk}"
    client = api_client(user)
    assert client.post_json(CART, {"productId": product.id, "quantity": 1}).status_code == 200
    losing = _LosingWriter(error)
    monkeypatch.setattr(write_engine, "_writer", lambda: losing)

    response = client.post_json(CART, {"productId": product.id, "quantity": 2})

    assert response.status_code == 200, response.content
    assert response.json()["lines"][0]["quantity"] == 3
    assert _quantity(cart_id, product.id) == 3  # applied once, not twice
    events_on_stream = wait_for(lambda: (found := stream_messages(_stream())) and len(found) >= 2 and found)
    assert [m["event"]["newQuantity"] for m in events_on_stream] == [1, 3]


def test_a_write_lost_before_it_was_sent_is_applied_once(monkeypatch) -> None:
    product = make_product()
    user = make_user()
    cart_id = f"user-{user.pk}"
    losing = _LosingWriter(elastic_transport.ConnectionError("refused"), after=False)
    monkeypatch.setattr(write_engine, "_writer", lambda: losing)

    response = api_client(user).post_json(CART, {"productId": product.id, "quantity": 2})

    assert response.status_code == 200, response.content
    assert _quantity(cart_id, product.id) == 2


def test_an_outcome_that_cannot_be_read_back_is_said_to_be_unknown(monkeypatch, settings: Any) -> None:
    settings.CART_OUTCOME_READ_ATTEMPTS = 2
    product = make_product()
    user = make_user()
    client = api_client(user)
    losing = _LosingWriter(elastic_transport.ConnectionError("reset"))
    monkeypatch.setattr(write_engine, "_writer", lambda: losing)
    real_read_cart = write_engine.read_cart
    calls = {"n": 0}

    def read_cart_then_fail(*, cart_id: str) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:  # the first read computes the change; the reads that resolve it fail
            raise elastic_transport.ConnectionError("node gone")
        return real_read_cart(cart_id=cart_id)

    monkeypatch.setattr(write_engine, "read_cart", read_cart_then_fail)

    response = client.post_json(CART, {"productId": product.id, "quantity": 1})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "outcome_unknown"
    assert "could not confirm" in error["message"]
    assert "Nothing was changed" not in error["message"]
    monkeypatch.undo()
    assert _quantity(f"user-{user.pk}", product.id) == 1  # it had in fact been applied, once
    # ... and its event, stored with it, is not lost: the relay sends it.
    assert events.relay_pending(grace=0, refresh=True).published == 1
    assert [m["event"]["newQuantity"] for m in stream_messages(_stream())] == [1]


# -- idempotency keys ----------------------------------------------------------------------------------


def test_an_api_retry_with_the_same_key_returns_the_first_result_and_applies_once(settings: Any) -> None:
    settings.CART_RELAY_THREAD = False
    product = make_product(stock=20)
    user = make_user()
    client = api_client(user)
    key = unique("add-")

    first = client.post_json(CART, {"productId": product.id, "quantity": 2}, idempotency_key=key)
    again = client.post_json(CART, {"productId": product.id, "quantity": 2}, idempotency_key=key)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _quantity(f"user-{user.pk}", product.id) == 2
    assert len(_stream_ids()) == 1

    # PATCH, DELETE of a line and DELETE of the cart: a replay answers as the first did, even where
    # applying again would now be refused (the line is gone).
    for method, path, body in [
        ("patch", f"{CART}/items/{product.id}", {"quantity": 5}),
        ("delete", f"{CART}/items/{product.id}", None),
        ("post", CART, {"productId": product.id, "quantity": 1}),
        ("delete", CART, None),
    ]:
        step = unique(f"{method}-")
        one = client.send(method, path, body, idempotency_key=step)
        two = client.send(method, path, body, idempotency_key=step)
        assert (one.status_code, two.status_code) == (200, 200), (method, path, two.content)
        assert two.json() == one.json()
        assert two["Idempotent-Replayed"] == "true"
    assert len(_stream_ids()) == 5  # one event per change, none for a replay


def test_a_key_reused_with_another_request_is_422_and_changes_nothing() -> None:
    product, other = make_product(), make_product()
    user = make_user()
    client = api_client(user)
    key = unique("k-")
    assert client.post_json(CART, {"productId": product.id, "quantity": 1}).status_code == 200
    body = {"productId": product.id, "quantity": 1}
    assert client.post_json(CART, body, idempotency_key=key).status_code == 200

    for changed in ({"productId": product.id, "quantity": 3}, {"productId": other.id, "quantity": 1}):
        response = client.post_json(CART, changed, idempotency_key=key)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    patched = client.patch_json(f"{CART}/items/{product.id}", {"quantity": 9})  # no key: applied
    assert patched.status_code == 200
    assert client.send("delete", CART, idempotency_key=key).status_code == 422
    assert _quantity(f"user-{user.pk}", product.id) == 9

    # Keys are per cart: another user's request with the same key is applied.
    second = make_user()
    assert api_client(second).post_json(CART, body, idempotency_key=key).status_code == 200
    assert _quantity(f"user-{second.pk}", product.id) == 1


def test_a_malformed_key_is_400() -> None:
    client = api_client(make_user())
    response = client.post_json(CART, {"productId": make_product().id, "quantity": 1}, idempotency_key="x" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert "Idempotency-Key" in response.json()["error"]["fields"]


def test_a_cart_remembers_a_bounded_number_of_keys(settings: Any) -> None:
    settings.CART_IDEMPOTENCY_KEYS_KEPT = 3
    product = make_product(stock=99)
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    for n in range(5):
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=1, idempotency_key=f"key-{n}")
    ops = get_cart(cart_id=cart_id).source["ops"]
    assert [op["key"] for op in ops if "key" in op] == ["key-2", "key-3", "key-4"]
    assert services.add_item(cart_id=cart_id, product_id=product.id, quantity=1, idempotency_key="key-4").replayed
    assert _quantity(cart_id, product.id) == 5


def _tokens(html: str) -> list[str]:
    return re.findall(r'name="idempotency_key" value="([0-9a-f]{32})"', html)


def test_a_re_sent_page_form_is_applied_once() -> None:
    product = make_product(stock=20)
    browser = Client()
    page = browser.get(f"/products/{product.id}").content.decode()
    [token] = _tokens(page)
    form = {"product_id": product.id, "quantity": "2", "idempotency_key": token, "next": "/cart/"}

    first = browser.post("/cart/add", form, follow=True)
    again = browser.post("/cart/add", form, follow=True)

    assert [str(m) for m in first.context["messages"]] == [str(m) for m in again.context["messages"]]
    assert "Added 2 of" in str(next(iter(again.context["messages"])))
    cart_page = browser.get("/cart/").content.decode()
    assert re.search(r'name="quantity" value="2"', cart_page)
    # Every form of a page has its own token, and a new page gives new ones.
    tokens = _tokens(cart_page)
    assert len(tokens) == len(set(tokens)) == 2  # update, remove ("Empty the cart" asks first, on its own page)
    assert token not in tokens

    remove = {"product_id": product.id, "idempotency_key": tokens[1]}
    removed = browser.post("/cart/remove", remove, follow=True)
    removed_again = browser.post("/cart/remove", remove, follow=True)
    assert "Removed" in str(next(iter(removed.context["messages"])))
    assert "Removed" in str(next(iter(removed_again.context["messages"])))  # not "not in your cart"

    # The add form's token sent with another quantity: refused, nothing added.
    reused = browser.post("/cart/add", {**form, "quantity": "3"}, follow=True)
    assert "already used" in str(next(iter(reused.context["messages"])))
    assert "empty" in browser.get("/cart/").content.decode().lower()
