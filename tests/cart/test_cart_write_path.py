"""The write path of issue 18 on the real Elasticsearch, Redis and NATS: one Elasticsearch request per add
and per set-quantity in the common case (counted at the transport); a stale last known version (another
replica wrote meanwhile) never loses or doubles a change; a decision that writes nothing is taken on a
real-time read; published events are left out by the next write and never published again; the relay
removes them from idle carts with one conditional bulk request."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import elastic_transport
import pytest
from django.conf import settings as django_settings
from django.test import Client

from cart import events, selectors, services, versions
from cart.documents import carts_alias
from cart.errors import LineNotFound, OutOfStock
from catalog.selectors import get_offers
from shopcart import es
from tests.support import unique
from tests.support.api import api_client
from tests.support.cart import make_product, make_user, stream_messages, wipe_cart

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]

CART = "/api/user/cart"


@contextlib.contextmanager
def es_requests() -> Iterator[list[tuple[str, str]]]:
    """Every request this process sends to Elasticsearch meanwhile, as (method, path)."""
    sent: list[tuple[str, str]] = []
    real = elastic_transport.Transport.perform_request

    def counting(self: Any, method: str, target: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, target))
        return real(self, method, target, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(elastic_transport.Transport, "perform_request", counting)
        yield sent


def _stream_ids() -> list[str]:
    return [m["event"]["eventId"] for m in stream_messages(str(django_settings.CART_EVENTS_STREAM))]


def _known_again(cart: Any) -> None:
    """The cart's last known version is `cart` again (a stale one: another replica's update of it was
    lost); what is known to be published stays as it is."""
    versions._redis().delete(versions._version_key(cart.id))
    versions.remember(cart)


def _other_replica_writes(cart_id: str, product_id: str, quantity: int) -> None:
    """What another replica's add does to the document, with its update of the last known version lost."""
    known = versions.last_known(cart_id).cart
    services.add_item(cart_id=cart_id, product_id=product_id, quantity=quantity)
    _known_again(known)


# -- one request ------------------------------------------------------------------------------------------


def test_an_add_and_a_set_quantity_cost_one_elasticsearch_request() -> None:
    product, other = make_product(stock=50), make_product(stock=50)
    client = api_client(make_user())
    assert client.post_json(CART, {"productId": product.id, "quantity": 1}).status_code == 200  # the cart exists
    assert client.post_json(CART, {"productId": other.id, "quantity": 1}).status_code == 200  # offers cached

    with es_requests() as added:
        response = client.post_json(CART, {"productId": product.id, "quantity": 2})
    with es_requests() as set_to:
        patched = client.patch_json(f"{CART}/items/{other.id}", {"quantity": 5})

    assert (response.status_code, patched.status_code) == (200, 200)
    assert response.json()["lines"][0]["quantity"] == 3
    assert patched.json()["lines"][1]["quantity"] == 5
    # The conditional index request and nothing else: no GET, no update to remove the published event.
    for sent in (added, set_to):
        assert len(sent) == 1, sent
        [(method, path)] = sent
        assert method == "PUT", sent
        assert "/_doc/" in path, sent
        assert "if_seq_no=" in path, sent


def test_a_page_form_add_reads_nothing_and_writes_once() -> None:
    product = make_product(stock=50)
    browser = Client()
    browser.force_login(make_user())
    form = {"product_id": product.id, "quantity": "1", "idempotency_key": uuid.uuid4().hex}
    browser.post("/cart/add", form)

    with es_requests() as sent:
        response = browser.post("/cart/add", {**form, "idempotency_key": uuid.uuid4().hex})

    assert response.status_code == 302
    assert len(sent) == 1, sent
    assert "if_seq_no=" in sent[0][1], sent


# -- a stale last known version -----------------------------------------------------------------------------


def test_a_stale_last_known_version_never_loses_or_doubles_a_change() -> None:
    """Replica A knows version 1; replica B writes version 2 (its update of the last known version lost);
    A's add starts from version 1: the conditional write is refused, A reads the cart and writes again.
    Both changes are stored once, with one event each."""
    product, mine = make_product(stock=50), make_product(stock=50)
    get_offers(product_ids=[mine.id])  # its offer cached: the requests counted below are the cart's
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    _other_replica_writes(cart_id, product.id, 2)
    stale = versions.last_known(cart_id).cart
    assert stale is not None
    assert stale.line(product.id).quantity == 1  # what A believes

    with es_requests() as sent:
        written = services.add_item(cart_id=cart_id, product_id=mine.id, quantity=4)

    assert [method for method, _ in sent] == ["PUT", "GET", "PUT"]  # refused, read, written
    stored = selectors.read_cart(cart_id=cart_id)
    assert {line.product_id: line.quantity for line in stored.lines} == {product.id: 3, mine.id: 4}
    assert written.version == stored.version
    assert versions.last_known(cart_id).cart.version == stored.version  # known again
    steps = [(m["event"]["productId"], m["event"]["newQuantity"]) for m in stream_messages(_stream())]
    assert steps == [(product.id, 1), (product.id, 3), (mine.id, 4)]


def test_a_retry_from_a_stale_version_finds_its_key_and_applies_nothing() -> None:
    """The request was applied by another replica (its answer lost, its update of the last known version
    lost too); the retry with the same key starts from the stale version and must not add again."""
    product = make_product(stock=50)
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    stale = versions.last_known(cart_id).cart
    first = services.add_item(cart_id=cart_id, product_id=product.id, quantity=2, idempotency_key="k-1")
    _known_again(stale)

    again = services.add_item(cart_id=cart_id, product_id=product.id, quantity=2, idempotency_key="k-1")

    assert again.replayed
    assert again.version == first.version
    assert selectors.read_cart(cart_id=cart_id).line(product.id).quantity == 3
    assert len(_stream_ids()) == 2


def test_a_refusal_or_a_no_op_on_the_last_known_version_is_decided_on_a_real_time_read() -> None:
    product, other = make_product(stock=5), make_product(stock=50)
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    without_other = versions.last_known(cart_id).cart
    services.add_item(cart_id=cart_id, product_id=other.id, quantity=1)
    with_other = versions.last_known(cart_id).cart
    services.set_quantity(cart_id=cart_id, product_id=product.id, quantity=3)

    # Refused on the stale version (no such line there); the cart holds the line: applied.
    _known_again(without_other)
    assert services.set_quantity(cart_id=cart_id, product_id=other.id, quantity=4).line(other.id).quantity == 4
    # A no-op on the stale version (2 already there); the cart holds 3: a change.
    _known_again(with_other)
    assert services.set_quantity(cart_id=cart_id, product_id=product.id, quantity=2).line(product.id).quantity == 2
    # Allowed on the stale version (2 + 2 within the stock of 5) and on the cart (2 + 2): applied.
    _known_again(with_other)
    assert services.add_item(cart_id=cart_id, product_id=product.id, quantity=2).line(product.id).quantity == 4
    # Allowed on the stale version, refused on what the cart holds (4 + 2 over the stock).
    _known_again(with_other)
    with pytest.raises(OutOfStock):
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    services.remove_item(cart_id=cart_id, product_id=other.id)
    _known_again(with_other)
    with pytest.raises(LineNotFound):  # the stale version has the line; the cart no longer does
        services.set_quantity(cart_id=cart_id, product_id=other.id, quantity=2)
    stored = selectors.read_cart(cart_id=cart_id)
    assert {line.product_id: line.quantity for line in stored.lines} == {product.id: 4}
    changes = [(m["event"]["type"], m["event"]["newQuantity"]) for m in stream_messages(_stream())]
    assert changes == [
        ("item_added", 2),
        ("item_added", 1),
        ("item_updated", 3),
        ("item_updated", 4),
        ("item_updated", 2),
        ("item_added", 4),
        ("item_removed", 0),
    ]


# -- published events ---------------------------------------------------------------------------------------


@pytest.fixture
def publishes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every event id handed to JetStream from now on (the stream itself would drop a duplicate id)."""
    sent: list[str] = []
    real = events._publish_one

    def recording(entry: dict[str, Any]) -> None:
        real(entry)
        sent.append(events.entry_id(entry))

    monkeypatch.setattr(events, "_publish_one", recording)
    return sent


def test_events_published_but_not_yet_removed_are_never_published_again(settings: Any, publishes: list[str]) -> None:
    """A published event stays in its cart until the next write or the relay; neither publishes it again,
    whether the write starts from the last known version or (that version lost) from a real-time read."""
    settings.CART_RELAY_GRACE_SECONDS = 0  # every waiting event is due at once: only the marks hold them back
    product = make_product(stock=50)
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)

    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    [first] = publishes
    assert [events.entry_id(e) for e in events.pending_entries(selectors.read_cart(cart_id=cart_id))] == [first]
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)  # from the last known version
    versions._redis().delete(versions._version_key(cart_id))  # that version lost (a failover); the marks kept
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)  # from a real-time read
    events.relay_pending(grace=0, refresh=True)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)

    assert len(publishes) == len(set(publishes)) == 4
    assert [m["event"]["newQuantity"] for m in stream_messages(_stream())] == [1, 2, 3, 4]


@pytest.fixture
def own_index(settings: Any) -> None:
    """Carts (and products) in indices of this test's own, so a relay round sees only this test's carts."""
    settings.ELASTICSEARCH_INDEX_PREFIX = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-{unique()}"


@pytest.mark.usefixtures("own_index")
def test_the_relay_removes_published_events_from_idle_carts_and_the_next_write_stays_one_request(
    publishes: list[str],
) -> None:
    product = make_product(stock=50)
    carts = [f"anon-{unique()}{unique()}" for _ in range(3)]
    for cart_id in carts:
        wipe_cart(cart_id)
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    assert all(events.pending_entries(selectors.read_cart(cart_id=cart_id)) for cart_id in carts)

    with es_requests() as sent:
        result = events.relay_pending(grace=0, refresh=True)

    assert (result.published, result.removed, result.remaining, result.carts) == (0, 3, 0, 3)
    bulks = [path for method, path in sent if "_bulk" in path]
    assert len(bulks) == 1, sent  # one request removes them from every idle cart
    assert not [path for method, path in sent if method == "GET"], sent  # nothing read one by one
    for cart_id in carts:
        stored = selectors.read_cart(cart_id=cart_id)
        assert (events.pending_entries(stored), stored.source["has_pending_events"]) == ([], False)
        assert versions.last_known(cart_id).cart.version == stored.version  # the relay kept it current
    with es_requests() as next_write:
        services.add_item(cart_id=carts[0], product_id=product.id, quantity=1)
    assert len(next_write) == 1, next_write
    assert len(publishes) == 4  # nothing published twice


@pytest.mark.usefixtures("own_index")
def test_a_cart_written_meanwhile_keeps_its_events_for_its_next_write() -> None:
    """The relay's removal is conditional on the version it saw: a write in between wins."""
    product = make_product(stock=50)
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    es.client().indices.refresh(index=carts_alias())
    real_remove = events._remove_published

    def write_first(removals: Any) -> int:
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
        return real_remove(removals)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(events, "_remove_published", write_first)
        events.relay_pending(grace=0)

    stored = selectors.read_cart(cart_id=cart_id)
    assert stored.line(product.id).quantity == 2
    assert len(events.pending_entries(stored)) == 1  # the second add's; the first left with that write


def _stream() -> str:
    return str(django_settings.CART_EVENTS_STREAM)
