"""The cart write engine's decisions (cart.write_engine.apply), on a fake store instead of Elasticsearch,
Redis and NATS: where a write starts (the last known version), what a stale one costs, that a decision
that writes nothing is taken on a real-time read, how a lost answer is resolved (`resolve`, the one rule
used during the retries and after them), and how the retries are bounded."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import elastic_transport
import pytest
from elasticsearch import ApiError, ConflictError

from cart.documents import cart_from_document, missing_cart
from cart.domain import Cart, Line
from cart.errors import CartBusy, CartOutcomeUnknown, LineNotFound
from cart.versions import Known
from cart.write_engine import CartStore, Change, Operation, Outcome, apply, record_op, resolve
from tests.support.es import api_error

CART_ID = "user-7"
INDEX = "carts-v2"
LOST = elastic_transport.ConnectionError("connection reset after the write")


@pytest.fixture(autouse=True)
def quick(settings: Any) -> None:
    settings.CART_RETRY_BACKOFF_BASE = 0
    settings.CART_RETRY_BACKOFF_CAP = 0
    settings.CART_OUTCOME_READ_ATTEMPTS = 1
    settings.CART_WRITE_RETRIES = 3


def line(product_id: str, quantity: int) -> Line:
    return Line(product_id, product_id.upper(), product_id, 100, "USD", quantity, "2026-01-01T00:00:00+00:00")


class FakeStore(CartStore):
    """One cart document with Elasticsearch's compare-and-set, a last known version that can be stale,
    and scripted faults for the next writes: "conflict" (another replica writes first), "lost" (applied,
    then the answer is lost), "lost-before" (never applied, answer lost), "lost-before-moved" (the same, and
    another replica writes meanwhile), "refused" (never sent), "block"."""

    def __init__(self, lines: list[Line] | None = None, *, known: str = "current") -> None:
        self.index = INDEX
        self.seq = -1
        self.source: dict[str, Any] | None = None
        self.faults: list[str] = []
        self.writes: list[tuple[int | None, str]] = []  # (the seq_no written on, outcome)
        self.reads = 0
        self.remembered: list[Cart] = []
        self.settled: list[Cart] = []
        self.on_lost: Callable[[], None] | None = None
        if lines is not None:
            self._store({"lines": [x.to_source() for x in lines], "currency": "USD", "ops": []})
        self.known = self.cart() if known == "current" and lines is not None else None

    def _store(self, source: dict[str, Any]) -> None:
        self.seq += 1
        self.source = source

    def cart(self) -> Cart:
        if self.source is None:
            return missing_cart(CART_ID)
        source = copy.deepcopy(self.source)
        return cart_from_document(CART_ID, source, seq_no=self.seq, primary_term=1, index=self.index)

    def quantity(self, product_id: str) -> int:
        found = self.cart().line(product_id)
        return found.quantity if found else 0

    def other_replica_writes(self, product_id: str = "other") -> None:
        cart = self.cart()
        source = dict(cart.source)
        existing = cart.line(product_id)
        lines = [x for x in cart.lines if x.product_id != product_id]
        lines.append(line(product_id, (existing.quantity if existing else 0) + 1))
        source["lines"] = [x.to_source() for x in lines]
        record_op(source, Operation.new(key=None, request=("other",)).record())
        self._store(source)

    # -- CartStore --

    def ensure(self) -> None:
        return None

    def last_known(self, cart_id: str) -> Known:
        return Known(self.known, frozenset())

    def read(self, cart_id: str) -> Cart:
        self.reads += 1
        return self.cart()

    def write(self, cart: Cart, source: dict[str, Any], body: bytes) -> Cart:
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "refused":
            self.writes.append((cart.seq_no, "never sent"))
            raise elastic_transport.ConnectionError("refused", errors=(ConnectionRefusedError(),))
        if fault == "block":
            self.writes.append((cart.seq_no, "blocked"))
            raise api_error(ApiError, 403, "cluster_block_exception")
        if fault in ("lost-before", "lost-before-moved"):
            self.writes.append((cart.seq_no, "lost before"))
            if fault == "lost-before-moved":
                self.other_replica_writes("coffee")
            raise LOST
        if fault == "conflict":
            self.other_replica_writes()
        if cart.index not in (None, self.index) or (cart.seq_no if cart.exists else -1) != self.seq:
            self.writes.append((cart.seq_no, "conflict"))
            raise api_error(ConflictError, 409, "version_conflict_engine_exception")
        self._store(copy.deepcopy(source))
        self.writes.append((cart.seq_no, "written"))
        if fault == "lost":
            if self.on_lost is not None:
                self.on_lost()
            raise LOST
        return self.cart()

    def after_write(self, cart: Cart, *, body: bytes | None, published: frozenset[str], own: list[str] | None) -> Cart:
        self.settled.append(cart)
        self.known = cart
        return cart

    def remember(self, cart: Cart) -> None:
        self.remembered.append(cart)

    def fault_after_write(self) -> None:
        return None


def add(product_id: str, quantity: int = 1) -> Callable[[Cart], Change]:
    def mutate(cart: Cart) -> Change:
        existing = cart.line(product_id)
        lines = [x for x in cart.lines if x.product_id != product_id]
        return Change(
            lines=[*lines, line(product_id, (existing.quantity if existing else 0) + quantity)], currency="USD"
        )

    return mutate


def set_to(product_id: str, quantity: int) -> Callable[[Cart], Change | None]:
    def mutate(cart: Cart) -> Change | None:
        existing = cart.line(product_id)
        if existing is None:
            raise LineNotFound()
        if existing.quantity == quantity:
            return None
        lines = [x for x in cart.lines if x.product_id != product_id]
        return Change(lines=[*lines, line(product_id, quantity)], currency="USD")

    return mutate


def run(store: FakeStore, mutate: Callable[[Cart], Change | None], *, key: str | None = None) -> Cart:
    return apply(cart_id=CART_ID, mutate=mutate, operation=Operation.new(key=key, request=("x",)), store=store)


# -- where a write starts ---------------------------------------------------------------------------------


def test_from_a_current_last_known_version_a_change_is_one_write_and_no_read() -> None:
    store = FakeStore([line("tea", 1)])
    written = run(store, add("tea"))
    assert (store.reads, store.writes) == (0, [(0, "written")])
    assert written.line("tea").quantity == 2
    assert store.settled == [written]


def test_without_a_last_known_version_the_cart_is_read_first() -> None:
    store = FakeStore([line("tea", 1)], known="none")
    run(store, add("tea"))
    assert (store.reads, store.writes) == (1, [(0, "written")])


def test_a_stale_last_known_version_costs_one_conflict_and_one_read_and_loses_nothing() -> None:
    store = FakeStore([line("tea", 1)])
    store.other_replica_writes("coffee")  # the last known version is now stale
    run(store, add("tea"))
    assert (store.reads, store.writes) == (1, [(0, "conflict"), (1, "written")])
    assert (store.quantity("tea"), store.quantity("coffee")) == (2, 1)


def test_a_no_op_or_a_refusal_on_the_last_known_version_is_decided_again_on_a_real_time_read() -> None:
    store = FakeStore([line("tea", 2)])
    stale = store.known
    store.other_replica_writes("tea")  # 3 now; the last known version says 2

    run(store, set_to("tea", 2))  # a no-op on the stale version, a change on the cart
    assert store.quantity("tea") == 2
    assert (store.reads, [outcome for _, outcome in store.writes]) == (1, ["written"])

    store.known = stale  # says tea 2, no coffee
    store.other_replica_writes("coffee")
    run(store, set_to("coffee", 5))  # "no such line" on the stale version; the cart has it
    assert store.quantity("coffee") == 5


def test_a_refusal_confirmed_on_the_real_time_read_writes_nothing() -> None:
    store = FakeStore([line("tea", 2)])
    with pytest.raises(LineNotFound):
        run(store, set_to("coffee", 5))
    assert (store.reads, store.writes) == (1, [])
    # The real-time read is kept as the last known version.
    assert [cart.version for cart in store.remembered] == [store.cart().version]


def test_a_replay_is_answered_from_a_real_time_read_without_writing() -> None:
    store = FakeStore([line("tea", 1)])
    first = run(store, add("tea"), key="k")
    replay = run(store, add("tea"), key="k")
    assert replay.replayed
    assert replay.version == first.version
    assert (store.reads, len(store.writes), store.quantity("tea")) == (1, 1, 2)


def test_retries_are_bounded_and_end_in_cart_busy(settings: Any) -> None:
    settings.CART_WRITE_RETRIES = 2
    store = FakeStore([line("tea", 1)])
    store.faults = ["conflict"] * 10
    with pytest.raises(CartBusy):
        run(store, add("tea"))
    # The write from the last known version, then the first attempt on a real-time read and two retries.
    assert [outcome for _, outcome in store.writes] == ["conflict"] * 4
    assert store.quantity("tea") == 1


def test_a_write_refused_by_a_retired_index_is_made_in_the_new_one() -> None:
    store = FakeStore([line("tea", 1)])
    store.faults = ["block"]
    store.index = "carts-v3"  # cart_reindex moved the carts: the last known version names carts-v2
    run(store, add("tea"))
    assert [outcome for _, outcome in store.writes] == ["blocked", "written"]
    assert store.quantity("tea") == 2


def test_a_write_block_on_the_current_index_writes_nothing() -> None:
    store = FakeStore([line("tea", 1)])
    store.faults = ["block"]
    with pytest.raises(ApiError):
        run(store, add("tea"))
    assert store.quantity("tea") == 1


# -- lost answers -----------------------------------------------------------------------------------------


def test_a_lost_answer_of_an_applied_write_is_found_applied_once() -> None:
    store = FakeStore([line("tea", 1)])
    store.faults = ["lost"]
    written = run(store, add("tea"))
    assert store.quantity("tea") == 2
    assert written.version == store.cart().version
    assert [outcome for _, outcome in store.writes] == ["written"]


def test_a_lost_answer_of_a_write_never_applied_is_written_again_at_that_version() -> None:
    store = FakeStore([line("tea", 1)])
    store.faults = ["lost-before"]
    run(store, add("tea"))
    assert store.writes == [(0, "lost before"), (0, "written")]
    assert store.quantity("tea") == 2


def test_a_connection_that_was_never_opened_is_the_plain_outage() -> None:
    store = FakeStore([line("tea", 1)])
    store.faults = ["refused"]
    with pytest.raises(elastic_transport.ConnectionError):
        run(store, add("tea"))
    assert store.quantity("tea") == 1


def _pushed_out(store: FakeStore) -> Callable[[], None]:
    """After our write: enough other writes that the cap drops our operation's record from `ops`."""

    def others() -> None:
        for _ in range(25):
            store.other_replica_writes("coffee")

    return others


@pytest.mark.parametrize("retries", [0, 3], ids=["after-the-loop", "in-the-loop"])
def test_an_applied_write_whose_record_was_pushed_out_is_unknown_not_nothing_changed(
    settings: Any, retries: int
) -> None:
    """The defect of issue 18: the resolution after the loop lacked the `ops_dropped_until` guard, so the
    client was told "nothing was changed" (and a retry without a key applied it twice). One rule now."""
    settings.CART_WRITE_RETRIES = retries
    store = FakeStore([line("tea", 1)])
    store.faults = ["lost"]
    store.on_lost = _pushed_out(store)
    with pytest.raises(CartOutcomeUnknown):
        run(store, add("tea"))
    assert store.quantity("tea") == 2  # it was applied: "unknown" is the truth, "nothing changed" was not


@pytest.mark.parametrize("retries", [0, 3], ids=["after-the-loop", "in-the-loop"])
def test_a_write_never_applied_while_the_cart_moved_on_is_nothing_changed_or_done_again(
    settings: Any, retries: int
) -> None:
    settings.CART_WRITE_RETRIES = retries
    store = FakeStore([line("tea", 1)])
    store.faults = ["lost-before-moved"]
    if retries == 0:
        with pytest.raises(elastic_transport.ConnectionError):  # the plain 503: nothing was changed, truly
            run(store, add("tea"))
        assert store.quantity("tea") == 1
    else:
        run(store, add("tea"))
        assert (store.quantity("tea"), store.quantity("coffee")) == (2, 1)  # computed again on what it holds


def test_resolve_is_the_one_rule() -> None:
    operation = Operation.new(key=None, request=("x",))
    base = {"lines": [], "ops": []}

    def cart(seq: int, index: str = INDEX, **source: Any) -> Cart:
        return cart_from_document(CART_ID, {**base, **source}, seq_no=seq, primary_term=1, index=index)

    uncertain = (4, 1, INDEX)
    assert resolve(cart(5, ops=[operation.record()]), operation, uncertain) is Outcome.APPLIED
    assert resolve(cart(4), operation, uncertain) is Outcome.MAYBE_IN_FLIGHT
    assert resolve(cart(5), operation, uncertain) is Outcome.NOT_APPLIED
    assert resolve(cart(5, ops_dropped_until=operation.started + 1), operation, uncertain) is Outcome.UNKNOWN
    assert resolve(cart(5, ops_dropped_until=operation.started - 1), operation, uncertain) is Outcome.NOT_APPLIED
    assert resolve(cart(4, index="carts-v3"), operation, uncertain) is Outcome.NOT_APPLIED
