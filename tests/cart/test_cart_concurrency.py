"""Many concurrent adds to one cart through a real multi-process server: gunicorn (several worker
processes, several threads each, like replicas behind the load balancer) serving the test settings,
50 client threads x 20 adds over their own HTTP connections. Every request must be acknowledged (200)
or refused with 409 (retries ran out), and the final quantity must equal the number of 200s exactly:
no acknowledged add lost, no refused add half-applied. Each 200 also published exactly one event."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from cart import events
from cart.selectors import get_cart
from tests.support.cart import make_product, stream_messages
from tests.support.gunicorn import gunicorn, user_with_token
from tests.support.polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cart_events_env")]

THREADS = 50
ADDS_PER_THREAD = 20


@pytest.fixture
def server(tmp_path: Path, own_database_url: str) -> Iterator[dict[str, Any]]:
    """gunicorn on a free port with the test settings, its own database and one user with a token."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
        "SHOPCART_TEST_RUN_ID": settings.TEST_RUN_ID,  # the same index and cache prefixes as this process
        "DATABASE_URL": own_database_url,
        "CART_MAX_QUANTITY_PER_LINE": "5000",
        "CART_EVENTS_STREAM": settings.CART_EVENTS_STREAM,
        "CART_EVENTS_SUBJECT_PREFIX": settings.CART_EVENTS_SUBJECT_PREFIX,
        "GUNICORN_WORKERS": "4",
        "GUNICORN_THREADS": "8",
        "GUNICORN_ACCESSLOG": "/dev/null",
    }
    user_id, token = user_with_token(env=env, email="load@example.com")

    with gunicorn(env=env, log_path=tmp_path / "gunicorn.log") as port:
        yield {"port": port, "token": token, "user_id": user_id, "log": tmp_path / "gunicorn.log"}


def _request(connection: http.client.HTTPConnection, method: str, path: str, token: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


def test_concurrent_adds_to_one_cart_end_with_the_exact_quantity(server: dict[str, Any]) -> None:
    product = make_product(stock=1000)
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
        start.wait()
        for _ in range(ADDS_PER_THREAD):
            try:
                status, body = _request(
                    connection, "POST", "/api/user/cart", server["token"], {"productId": product.id, "quantity": 1}
                )
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
                continue
            with lock:
                statuses.append(status)
                if status not in (200, 409):
                    errors.append(f"{status}: {body}")
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    duration = time.monotonic() - started

    counts = Counter(statuses)
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    status, summary = _request(connection, "GET", "/api/user/cart", server["token"])
    quantity = summary["lines"][0]["quantity"] if summary["lines"] else 0
    print(  # the numbers for the report (pytest -s)
        f"\nconcurrent adds: {len(statuses)} requests in {duration:.1f}s, {counts[200]} x 200, {counts[409]} x 409, "
        f"final quantity {quantity}"
    )
    assert errors == [], errors[:5]
    assert len(statuses) == THREADS * ADDS_PER_THREAD
    assert set(counts) <= {200, 409}
    assert status == 200
    assert quantity == counts[200]
    assert summary["itemCount"] == counts[200]

    # Each acknowledged add published exactly one event (by the relay, if its request could not).
    def all_published() -> list[dict[str, Any]] | None:
        found = stream_messages(settings.CART_EVENTS_STREAM)
        pending = events.pending_entries(get_cart(cart_id=f"user-{server['user_id']}"))
        return found if len(found) >= counts[200] and not pending else None

    messages = wait_for(all_published, timeout=60)
    ids = [message["event"]["eventId"] for message in messages]
    assert len(ids) == len(set(ids)) == counts[200]
    assert sorted(message["event"]["newQuantity"] for message in messages) == list(range(1, counts[200] + 1))
