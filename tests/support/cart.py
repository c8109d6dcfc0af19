"""The cart tests' fixture and helpers (registered by tests/conftest.py).

Each test gets its own JetStream stream and subject prefix, so event counts are exact and parallel runs
never see each other. User ids restart after each test's rollback, so a new user's
cart document (`user-<id>`) is deleted when the user is made."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from elasticsearch import NotFoundError

from cart import relay, versions
from cart.documents import carts_alias, ensure_cart_index
from catalog.selectors import Product
from catalog.services import ProductInput, create_product
from shopcart import es
from shopcart.eventbus import EventBusUnavailable, publisher
from tests.support import unique


def delete_stream(name: str) -> None:
    async def drop(client: Any) -> None:
        try:
            await client.jetstream().delete_stream(name)
        except Exception:  # noqa: BLE001 - missing already is fine
            return

    with contextlib.suppress(EventBusUnavailable):
        publisher().run(drop)


@pytest.fixture
def cart_events_env(settings: Any) -> Iterator[dict[str, str]]:
    """A stream and subject prefix of this test's own."""
    tag = unique()
    env = {
        "CART_EVENTS_STREAM": f"CART_T{settings.TEST_RUN_ID}_{tag}".upper(),
        "CART_EVENTS_SUBJECT_PREFIX": f"t{settings.TEST_RUN_ID}{tag}.cart",
    }
    for name, value in env.items():
        setattr(settings, name, value)
    yield env
    delete_stream(env["CART_EVENTS_STREAM"])


@pytest.fixture
def relay_thread(settings: Any) -> Iterator[None]:
    """This process as a relay candidate, quick, for one test: the relay runs in web processes (each
    gunicorn worker: cart.relay), so a test of in-process requests that waits for it starts one here."""
    settings.CART_RELAY_THREAD = True
    settings.CART_RELAY_INTERVAL = 0.5
    settings.CART_RELAY_GRACE_SECONDS = 1.0
    settings.CART_RELAY_IDLE_SECONDS = 1.0
    relay.ensure_relay_thread()
    yield
    relay.stop_relay_thread()


def wipe_cart(cart_id: str) -> None:
    """Delete the cart document, and what Redis knows of it (its last known version, its published marks)."""
    ensure_cart_index()
    with contextlib.suppress(NotFoundError):
        es.client().delete(index=carts_alias(), id=cart_id)
    versions.forget(cart_id)


def make_product(
    *, price: str = "10.00", stock: int = 50, active: bool = True, name: str = "", currency: str = "USD"
) -> Product:
    sku = unique("T-")
    return create_product(
        data=ProductInput(
            sku=sku,
            name=name or f"Test product {sku}",
            description="",
            category="Test",
            price=Decimal(price),
            currency=currency,
            stock=stock,
            active=active,
        )
    )


def make_user(name: str = "Shopper", *, password: str = "a-Long-password-1") -> Any:  # noqa: S107
    """A new user with an address nobody else uses (needs the django_db mark) whose cart starts empty: ids
    restart after a rolled-back test, so a cart document left by an earlier test with the same id is
    deleted first."""
    from accounts.models import User

    user = User.objects.create_user(email=f"{unique('u')}@example.com", password=password, name=name)
    wipe_cart(f"user-{user.pk}")
    return user


def stream_messages(stream: str) -> list[dict[str, Any]]:
    """Every message the stream holds, as {"seq", "subject", "event"} in stream order."""

    async def read(client: Any) -> list[dict[str, Any]]:
        js = client.jetstream()
        try:
            info = await js.stream_info(stream)
        except Exception:  # noqa: BLE001 - no stream yet: no messages
            return []
        messages = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                message = await js.get_msg(stream, seq)
            except Exception:  # noqa: BLE001, S112 - a deleted sequence; skip it
                continue
            messages.append({"seq": seq, "subject": message.subject, "event": json.loads(message.data)})
        return messages

    return publisher().run(read, timeout=30)
