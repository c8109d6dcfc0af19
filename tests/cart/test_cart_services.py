"""Cart services and selectors against the real Elasticsearch and Redis: validation, optimistic
concurrency, the summary and its cache, and the anonymous-to-user merge."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from elasticsearch import NotFoundError

from cart import cleanup, merge, selectors, services, write_engine
from cart.documents import carts_alias, ensure_cart_index
from cart.domain import Cart
from cart.errors import (
    CartBusy,
    CurrencyMismatch,
    LineNotFound,
    OutOfStock,
    ProductUnavailable,
    QuantityInvalid,
    QuantityOverMaximum,
)
from cart.schemas import CartOut
from catalog.services import set_product_active, update_product
from shopcart import es
from tests.support import unique
from tests.support.cart import make_product, wipe_cart
from tests.support.catalog import input_of

pytestmark = pytest.mark.usefixtures("cart_events_env")


@pytest.fixture
def cart_id() -> str:
    cart_id = f"user-9{unique()[:6].translate(str.maketrans('abcdef', '123456'))}"
    wipe_cart(cart_id)
    return cart_id


def _stored(cart_id: str) -> dict[str, Any] | None:
    try:
        return dict(es.client().get(index=carts_alias(), id=cart_id)["_source"])
    except NotFoundError:
        return None


def test_add_creates_the_cart_and_merges_quantities_into_one_line(cart_id: str) -> None:
    product = make_product(price="12.50", stock=20)
    first = services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    assert first.seq_no is not None
    second = services.add_item(cart_id=cart_id, product_id=product.id, quantity=3)

    assert len(second.lines) == 1
    line = second.lines[0]
    assert (line.product_id, line.quantity, line.unit_price_cents, line.sku) == (product.id, 5, 1250, product.sku)
    # A real-time GET sees the write at once, with no refresh.
    stored = selectors.get_cart(cart_id=cart_id)
    assert stored.seq_no == second.seq_no
    assert [(x.product_id, x.quantity) for x in stored.lines] == [(product.id, 5)]
    assert _stored(cart_id)["user_id"] == cart_id.removeprefix("user-")


@pytest.mark.parametrize(
    ("quantity", "error"),
    [
        (0, QuantityInvalid),
        (-1, QuantityInvalid),
        (1.5, QuantityInvalid),
        ("x", QuantityInvalid),
        ("2", QuantityInvalid),
        (True, QuantityInvalid),
        (None, QuantityInvalid),
        (100, QuantityOverMaximum),
        (1000, QuantityOverMaximum),
    ],
)
def test_add_refuses_bad_quantities(cart_id: str, quantity: Any, error: type[Exception]) -> None:
    product = make_product(stock=5000)
    with pytest.raises(error) as caught:
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=quantity)
    assert "quantity" in caught.value.fields
    assert _stored(cart_id) is None


def test_add_refuses_unknown_and_inactive_products(cart_id: str) -> None:
    inactive = make_product(active=False)
    for product_id in ("no-such-product", inactive.id, "", "x" * 500):
        with pytest.raises(ProductUnavailable) as caught:
            services.add_item(cart_id=cart_id, product_id=product_id, quantity=1)
        assert "productId" in caught.value.fields
    assert _stored(cart_id) is None


def test_stock_is_checked_on_the_merged_quantity(cart_id: str) -> None:
    product = make_product(stock=5)
    sold_out = make_product(stock=0)
    with pytest.raises(OutOfStock, match="out of stock"):
        services.add_item(cart_id=cart_id, product_id=sold_out.id, quantity=1)
    with pytest.raises(OutOfStock):
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=6)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=4)
    with pytest.raises(OutOfStock, match="Only 5") as caught:
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    assert caught.value.available == 5
    assert selectors.get_cart(cart_id=cart_id).line(product.id).quantity == 4


def test_the_maximum_is_checked_on_the_merged_quantity(cart_id: str, settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 5
    product = make_product(stock=100)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=3)
    with pytest.raises(QuantityOverMaximum, match="at most 5") as caught:
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=3)
    assert "You have 3 already" in caught.value.message
    with pytest.raises(QuantityOverMaximum):
        services.set_quantity(cart_id=cart_id, product_id=product.id, quantity=6)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    assert selectors.get_cart(cart_id=cart_id).line(product.id).quantity == 5


def test_set_quantity_remove_and_clear(cart_id: str) -> None:
    one, two = make_product(stock=10), make_product(stock=10)
    with pytest.raises(LineNotFound):
        services.set_quantity(cart_id=cart_id, product_id=one.id, quantity=2)
    with pytest.raises(LineNotFound):
        services.remove_item(cart_id=cart_id, product_id=one.id)
    services.add_item(cart_id=cart_id, product_id=one.id, quantity=1)
    services.add_item(cart_id=cart_id, product_id=two.id, quantity=1)

    updated = services.set_quantity(cart_id=cart_id, product_id=one.id, quantity=7)
    assert updated.line(one.id).quantity == 7
    unchanged = services.set_quantity(cart_id=cart_id, product_id=one.id, quantity=7)
    assert unchanged.seq_no == updated.seq_no  # nothing changed, nothing written
    with pytest.raises(OutOfStock):
        services.set_quantity(cart_id=cart_id, product_id=one.id, quantity=11)
    with pytest.raises(QuantityInvalid):
        services.set_quantity(cart_id=cart_id, product_id=one.id, quantity=-1)

    after_remove = services.remove_item(cart_id=cart_id, product_id=one.id)
    assert [line.product_id for line in after_remove.lines] == [two.id]
    services.add_item(cart_id=cart_id, product_id=one.id, quantity=1)
    zero = services.set_quantity(cart_id=cart_id, product_id=one.id, quantity=0)  # 0 removes the line
    assert [line.product_id for line in zero.lines] == [two.id]
    cleared = services.clear_cart(cart_id=cart_id)
    assert cleared.lines == ()
    assert selectors.get_cart(cart_id=cart_id).lines == ()
    assert services.clear_cart(cart_id=cart_id).seq_no == cleared.seq_no  # already empty: no write


def test_a_cart_holds_one_currency(cart_id: str) -> None:
    dollars, euros = make_product(currency="USD"), make_product(currency="EUR")
    services.add_item(cart_id=cart_id, product_id=dollars.id, quantity=1)
    with pytest.raises(CurrencyMismatch) as caught:
        services.add_item(cart_id=cart_id, product_id=euros.id, quantity=1)
    assert "productId" in caught.value.fields
    services.remove_item(cart_id=cart_id, product_id=dollars.id)
    # An empty cart takes the currency of its first line.
    services.add_item(cart_id=cart_id, product_id=euros.id, quantity=2)
    summary = CartOut.of(selectors.get_summary(cart_id=cart_id)).model_dump()
    assert (summary["currency"], summary["subtotal"]) == ("EUR", "20.00")


def test_a_line_of_a_deactivated_product_can_still_be_removed(cart_id: str) -> None:
    product = make_product()
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    set_product_active(product_id=product.id, active=False)
    with pytest.raises(ProductUnavailable):
        services.set_quantity(cart_id=cart_id, product_id=product.id, quantity=2)
    assert services.remove_item(cart_id=cart_id, product_id=product.id).lines == ()


class _Interferer:
    """Another replica writing the same cart right before each of our writes (after our write started from
    the cart's last known version or a real-time read), without updating the last known version."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, times: int, product_id: str) -> None:
        self.times, self.product_id, self.writes = times, product_id, 0
        self._real = write_engine.STORE.write
        monkeypatch.setattr(write_engine.STORE, "write", self)

    def __call__(self, cart: Cart, source: dict[str, Any], body: bytes) -> Cart:
        self.writes += 1
        if self.writes <= self.times:
            current = selectors.read_cart(cart_id=cart.id)
            line = current.line(self.product_id)
            others = [x.to_source() for x in current.lines if x.product_id != self.product_id]
            bumped = {**line.to_source(), "quantity": line.quantity + 1}
            es.client().index(
                index=carts_alias(),
                id=cart.id,
                document={**current.source, "lines": [*others, bumped]},
                if_seq_no=current.seq_no,
                if_primary_term=current.primary_term,
            )
        return self._real(cart, source, body)


def test_a_write_between_read_and_write_is_never_overwritten(cart_id: str, monkeypatch) -> None:
    other, product = make_product(stock=100), make_product(stock=100)
    services.add_item(cart_id=cart_id, product_id=other.id, quantity=1)
    interferer = _Interferer(monkeypatch, times=2, product_id=other.id)

    cart = services.add_item(cart_id=cart_id, product_id=product.id, quantity=4)

    assert interferer.writes == 3  # two conflicts, then the write went through
    stored = selectors.get_cart(cart_id=cart_id)
    assert stored.seq_no == cart.seq_no
    assert {line.product_id: line.quantity for line in stored.lines} == {other.id: 3, product.id: 4}


def test_cart_busy_when_retries_run_out_and_nothing_is_half_applied(cart_id: str, monkeypatch, settings: Any) -> None:
    settings.CART_WRITE_RETRIES = 3
    other, product = make_product(stock=100), make_product(stock=100)
    services.add_item(cart_id=cart_id, product_id=other.id, quantity=1)
    interferer = _Interferer(monkeypatch, times=100, product_id=other.id)

    with pytest.raises(CartBusy):
        services.add_item(cart_id=cart_id, product_id=product.id, quantity=4)

    # The write from the last known version, then one per real-time read: the first and three retries.
    assert interferer.writes == 5
    stored = selectors.get_cart(cart_id=cart_id)
    assert {line.product_id: line.quantity for line in stored.lines} == {other.id: 6}


def test_concurrent_adds_in_threads_all_count(cart_id: str, settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 1000
    settings.CART_WRITE_RETRIES = 50
    product = make_product(stock=1000)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            try:
                services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
                result = "ok"
            except CartBusy:
                result = "busy"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 80
    assert selectors.get_cart(cart_id=cart_id).line(product.id).quantity == outcomes.count("ok")
    assert outcomes.count("ok") > 0


def test_summary_arithmetic_is_exact(cart_id: str) -> None:
    teapot = make_product(price="12.50", stock=10)
    nail = make_product(price="0.10", stock=100)
    services.add_item(cart_id=cart_id, product_id=teapot.id, quantity=3)
    services.add_item(cart_id=cart_id, product_id=nail.id, quantity=7)

    summary = CartOut.of(selectors.get_summary(cart_id=cart_id)).model_dump()

    assert summary["itemCount"] == 10
    assert summary["lineCount"] == 2
    assert summary["subtotal"] == "38.20"
    assert summary["currency"] == "USD"
    by_id = {line["productId"]: line for line in summary["lines"]}
    assert by_id[teapot.id] | {"addedUnitPrice": None} == {
        "productId": teapot.id,
        "sku": teapot.sku,
        "name": teapot.name,
        "unitPrice": "12.50",
        "addedUnitPrice": None,
        "quantity": 3,
        "lineTotal": "37.50",
        "priceChanged": False,
        "available": True,
    }
    assert by_id[nail.id]["lineTotal"] == "0.70"
    assert selectors.get_summary(cart_id=cart_id).subtotal == Decimal("38.20")


def test_price_change_is_flagged_and_never_served_stale_from_the_cache(cart_id: str) -> None:
    product = make_product(price="12.50", stock=10)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    before = selectors.get_summary(cart_id=cart_id)
    assert (before.subtotal_cents, before.lines[0].price_changed) == (2500, False)
    assert selectors.get_summary(cart_id=cart_id) == before  # cached, same cart version

    update_product(product_id=product.id, data=input_of(product, price=Decimal("13.99")))

    after = CartOut.of(selectors.get_summary(cart_id=cart_id)).model_dump()
    line = after["lines"][0]
    assert (line["unitPrice"], line["addedUnitPrice"], line["priceChanged"]) == ("13.99", "12.50", True)
    assert (line["lineTotal"], after["subtotal"]) == ("27.98", "27.98")

    # Adding more keeps the line's add-time price, so the change stays visible.
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    again = CartOut.of(selectors.get_summary(cart_id=cart_id)).model_dump()
    assert (again["subtotal"], again["lines"][0]["priceChanged"]) == ("41.97", True)


def test_summary_cache_is_used_and_keyed_by_the_cart_version(cart_id: str, monkeypatch) -> None:
    product = make_product(price="2.00")
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    calls = []
    real = selectors.get_offers

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(selectors, "get_offers", counting)
    first = selectors.get_summary(cart_id=cart_id)
    second = selectors.get_summary(cart_id=cart_id)
    assert (first.item_count, second.item_count, len(calls)) == (1, 1, 1)

    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    assert selectors.get_summary(cart_id=cart_id).item_count == 2
    assert len(calls) == 2


def test_unavailable_lines_are_listed_but_not_counted(cart_id: str) -> None:
    kept = make_product(price="5.00")
    dropped = make_product(price="7.00")
    services.add_item(cart_id=cart_id, product_id=kept.id, quantity=2)
    services.add_item(cart_id=cart_id, product_id=dropped.id, quantity=3)
    set_product_active(product_id=dropped.id, active=False)

    summary = CartOut.of(selectors.get_summary(cart_id=cart_id)).model_dump()

    assert (summary["itemCount"], summary["lineCount"], summary["subtotal"]) == (2, 1, "10.00")
    gone = next(line for line in summary["lines"] if line["productId"] == dropped.id)
    assert (gone["available"], gone["lineTotal"], gone["unitPrice"], gone["quantity"]) == (False, "0.00", "7.00", 3)


def test_empty_and_missing_carts_summarise_to_zero() -> None:
    summary = CartOut.of(selectors.get_summary(cart_id=f"user-{unique()}")).model_dump()
    assert summary == {"lines": [], "itemCount": 0, "lineCount": 0, "subtotal": "0.00", "currency": "USD"}
    assert selectors.get_summary(cart_id=None).item_count == 0


def _anon() -> str:
    cart_id = f"anon-{unique()}{unique()}"
    wipe_cart(cart_id)
    return cart_id


def test_merge_adds_quantities_capped_by_stock_and_maximum(cart_id: str, settings: Any) -> None:
    settings.CART_MAX_QUANTITY_PER_LINE = 10
    user_id = int(cart_id.removeprefix("user-"))
    scarce = make_product(stock=4)
    plenty = make_product(stock=100)
    only_anon = make_product(stock=100)
    gone = make_product(stock=100)
    anon = _anon()
    services.add_item(cart_id=cart_id, product_id=scarce.id, quantity=2)
    services.add_item(cart_id=cart_id, product_id=plenty.id, quantity=6)
    for product, quantity in ((scarce, 3), (plenty, 7), (only_anon, 2), (gone, 1)):
        services.add_item(cart_id=anon, product_id=product.id, quantity=quantity)
    set_product_active(product_id=gone.id, active=False)

    result = services.merge_anonymous_cart(anon_cart_id=anon, user_id=user_id)

    quantities = {line.product_id: line.quantity for line in selectors.get_cart(cart_id=cart_id).lines}
    assert quantities == {scarce.id: 4, plenty.id: 10, only_anon.id: 2}
    reasons = {line.product_id: (line.added, line.reason) for line in result.lines}
    assert reasons == {
        scarce.id: (2, "stock"),
        plenty.id: (4, "maximum"),
        only_anon.id: (2, ""),
        gone.id: (0, "unavailable"),
    }
    assert _stored(anon) is None  # the anonymous cart is gone

    # Running it again (say a retried log-in) changes nothing.
    again = services.merge_anonymous_cart(anon_cart_id=anon, user_id=user_id)
    assert again.lines == []
    assert {line.product_id: line.quantity for line in selectors.get_cart(cart_id=cart_id).lines} == quantities


def test_an_interrupted_merge_is_finished_exactly_once(cart_id: str) -> None:
    user_id = int(cart_id.removeprefix("user-"))
    product = make_product(stock=100)
    anon = _anon()
    services.add_item(cart_id=anon, product_id=product.id, quantity=3)
    claimed = selectors.get_cart(cart_id=anon)
    # A merge that crashed after claiming the lines and applying them to the user's cart, before
    # deleting the anonymous cart: the claim is still pending and the user cart records it.
    claim = {"id": "claim-1", "into": cart_id, "from": anon, "lines": [x.to_source() for x in claimed.lines]}
    es.client().index(index=carts_alias(), id=anon, document={**claimed.source, "lines": [], "pending_merge": claim})
    merge.apply_claim(claim=claim, target_id=cart_id)
    assert selectors.get_cart(cart_id=cart_id).line(product.id).quantity == 3
    # Meanwhile the anonymous shopper added one more.
    services.add_item(cart_id=anon, product_id=product.id, quantity=1)

    services.merge_anonymous_cart(anon_cart_id=anon, user_id=user_id)

    assert selectors.get_cart(cart_id=cart_id).line(product.id).quantity == 4
    assert _stored(anon) is None


def test_ensure_cart_index_is_idempotent_and_the_mapping_strict(cart_id: str) -> None:
    assert ensure_cart_index() is False
    from cart import documents

    documents._ensured.clear()
    assert ensure_cart_index() is False  # exists already: alias found
    mapping = es.client().indices.get_mapping(index=carts_alias())
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["dynamic"] == "strict"
    properties = index_mapping["mappings"]["properties"]
    # Lines are stored, not indexed; what operators look carts up by is.
    assert properties["lines"] == {"type": "object", "enabled": False}
    assert {name: properties[name]["type"] for name in ("kind", "user_id", "updated_at", "has_pending_events")} == {
        "kind": "keyword",
        "user_id": "keyword",
        "updated_at": "date",
        "has_pending_events": "boolean",
    }
    with pytest.raises(Exception, match="strict_dynamic_mapping_exception"):
        es.client().index(index=carts_alias(), id=cart_id, document={"unexpected": 1})


# -- abandoned guest carts ---------------------------------------------------------------------------------


def test_cleanup_deletes_only_guest_carts_idle_past_the_retention(cart_id: str) -> None:
    product = make_product(price="3.00")
    stale_guest, fresh_guest, stale_user = f"anon-{unique()}", f"anon-{unique()}", cart_id
    for owner in (stale_guest, fresh_guest, stale_user):
        services.add_item(cart_id=owner, product_id=product.id, quantity=1)
    # As if untouched for 40 days (the test cannot wait a month): only updated_at is changed.
    long_ago = (timezone.now() - timedelta(days=40)).isoformat()
    for owner in (stale_guest, stale_user):
        es.client().update(index=carts_alias(), id=owner, doc={"updated_at": long_ago})
    es.client().indices.refresh(index=carts_alias())

    out = StringIO()
    call_command("cart_cleanup", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "Would delete 1 guest cart unchanged for more than 30 days."
    assert _stored(stale_guest) is not None

    call_command("cart_cleanup", "--days", "41", stdout=out)  # not idle for that long: kept
    assert _stored(stale_guest) is not None

    out = StringIO()
    call_command("cart_cleanup", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 guest cart unchanged for more than 30 days."
    assert _stored(stale_guest) is None
    # A signed-in user's cart is never a guest's, however old; a recent guest cart stays too.
    assert _stored(stale_user) is not None
    assert _stored(fresh_guest) is not None


def test_cleanup_keeps_a_guest_cart_written_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cart is deleted only at the version the search matched: a guest who comes back at that
    moment and changes the cart (a newer version) keeps it."""
    product = make_product(price="3.00")
    guest = f"anon-{unique()}"
    services.add_item(cart_id=guest, product_id=product.id, quantity=1)
    long_ago = (timezone.now() - timedelta(days=40)).isoformat()
    es.client().update(index=carts_alias(), id=guest, doc={"updated_at": long_ago})
    es.client().indices.refresh(index=carts_alias())
    # The guest's write lands after the search matched the old version, before the delete.
    real_streaming_bulk = cleanup.streaming_bulk

    def write_first(client: Any, actions: Any, **kwargs: Any) -> Any:
        actions = list(actions)  # the search has run and matched the old version
        services.add_item(cart_id=guest, product_id=product.id, quantity=1)
        return real_streaming_bulk(client, actions, **kwargs)

    monkeypatch.setattr(cleanup, "streaming_bulk", write_first)
    assert services.delete_abandoned_guest_carts(idle_days=30) == 0
    assert selectors.get_cart(cart_id=guest).lines[0].quantity == 2


def test_a_summary_cached_at_another_catalog_version_is_not_served(cart_id: str) -> None:
    """The cached summary records the catalog version it was priced at, read in the same round trip as
    the current one (selectors.summarize): only an entry of the current version is served."""
    import dataclasses

    from catalog.selectors import catalog_version

    product = make_product(price="4.00", stock=10)
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=2)
    cart = selectors.get_cart(cart_id=cart_id)
    real = selectors.summarize(cart=cart)
    assert real.subtotal_cents == 800
    planted = dataclasses.replace(real, subtotal_cents=1)
    selectors.store_summary(selectors.summary_key(cart), planted, version=catalog_version() - 1)
    assert selectors.summarize(cart=cart).subtotal_cents == 800
    selectors.store_summary(selectors.summary_key(cart), planted, version=catalog_version())
    assert selectors.summarize(cart=cart).subtotal_cents == 1  # the current version's entry is what is read
