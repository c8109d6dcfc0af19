"""Each backing service is real: a round trip through the same clients the app uses."""

from __future__ import annotations

import asyncio
import time
import uuid
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cache import SessionStore
from django.core.cache import cache
from django.test import Client
from elasticsearch_dsl import Document, Integer, Keyword, Text

from shopcart import es
from shopcart.eventbus import NatsPublisher, publisher
from tests.support.stack import stack


class Gadget(Document):
    name = Text(fields={"raw": Keyword()})
    sku = Keyword()
    stock = Integer()

    class Index:
        name = "placeholder"  # set per test run below


@pytest.fixture
def gadget_index() -> str:
    name = es.index_name(f"gadgets-{uuid.uuid4().hex[:6]}")
    Gadget._index._name = name
    Gadget.init(index=name)
    yield name
    es.client().indices.delete(index=name, ignore_unavailable=True)


def test_elasticsearch_document_round_trip(gadget_index: str) -> None:
    Gadget(meta={"id": "g-1"}, name="Brass telescope", sku="TEL-1", stock=3).save(index=gadget_index)

    # Real-time GET by id sees the write before any refresh.
    fetched = Gadget.get(id="g-1", index=gadget_index)
    assert fetched.sku == "TEL-1"
    assert fetched.meta.seq_no >= 0
    assert fetched.meta.primary_term >= 1

    # Search sees it only after a refresh.
    es.client().indices.refresh(index=gadget_index)
    hits = Gadget.search(index=gadget_index).query("match", name="telescope").execute()
    assert [hit.meta.id for hit in hits] == ["g-1"]


def test_redis_cache_round_trip() -> None:
    key = f"probe-{uuid.uuid4().hex}"
    cache.set(key, {"answer": 42}, timeout=30)
    assert cache.get(key) == {"answer": 42}
    assert cache.add(f"{key}-n", 1)
    assert cache.incr(f"{key}-n") == 2
    cache.delete(key)
    assert cache.get(key) is None


def test_session_round_trip_through_redis() -> None:
    # Django's cache sessions (shopcart/sessions.py only changes how an unreachable Redis is reported).
    assert settings.SESSION_ENGINE == "shopcart.sessions"
    assert issubclass(import_module(settings.SESSION_ENGINE).SessionStore, SessionStore)
    session = SessionStore()
    session["cart_hint"] = "two teapots"
    session.save()

    reloaded = SessionStore(session_key=session.session_key)
    assert reloaded["cart_hint"] == "two teapots"


def _nats_round_trip(bus: NatsPublisher, payload: bytes) -> bytes:
    """Subscribe, publish `payload` and return what the subscription received."""
    subject = f"test.{uuid.uuid4().hex}"

    async def round_trip(client):  # type: ignore[no-untyped-def]
        subscription = await client.subscribe(subject)
        await client.publish(subject, payload)
        message = await subscription.next_msg(timeout=2)
        await subscription.unsubscribe()
        return message.data

    return bus.run(round_trip)


def test_nats_publish_subscribe() -> None:
    assert _nats_round_trip(publisher(), b"hello") == b"hello"


def test_jetstream_publish_is_acknowledged() -> None:
    stream = f"TEST_{settings.TEST_RUN_ID}_{uuid.uuid4().hex[:6]}".upper()
    subject = f"test.{stream.lower()}.probe"
    publisher().ensure_stream(name=stream, subjects=[subject])
    try:
        first = publisher().publish(subject, b'{"n": 1}', msg_id="probe-1")
        duplicate = publisher().publish(subject, b'{"n": 1}', msg_id="probe-1")
        assert first >= 1
        assert duplicate == first  # the stream recognised the re-sent id

        async def stored(client):  # type: ignore[no-untyped-def]
            info = await client.jetstream().stream_info(stream)
            return info.state.messages

        assert publisher().run(stored) == 1
    finally:

        async def drop(client):  # type: ignore[no-untyped-def]
            await client.jetstream().delete_stream(stream)

        publisher().run(drop)


def test_healthz_does_no_io() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Served-By"]


@pytest.mark.django_db
def test_readyz_reports_every_dependency_up() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "elasticsearch", "redis", "nats"}
    assert all(check["status"] == "up" for check in body["checks"].values())


def _wait_until_ready(client: Client, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response.json()
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("service", ["redis", "nats", "elasticsearch"])
def test_readyz_names_a_stopped_dependency_and_recovers(service: str) -> None:
    client = Client()
    stack("stop", service)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"][service]["status"] == "down"
        assert body["checks"][service]["error"]
        others = {name for name, check in body["checks"].items() if check["status"] == "up"}
        assert others == {"database", "elasticsearch", "redis", "nats"} - {service}
    finally:
        stack("start", service)
    assert _wait_until_ready(client)["status"] == "ready"


def test_eventbus_reports_unavailable_fast_when_nats_is_unreachable() -> None:
    from shopcart.eventbus import EventBusUnavailable

    dead = NatsPublisher(url="nats://127.0.0.1:1", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(EventBusUnavailable):
        dead.publish("test.nowhere", b"x")
    with pytest.raises(EventBusUnavailable):
        dead.ping()
    assert time.monotonic() - started < 3
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), dead._loop).result(1)  # the loop stays healthy


def test_several_addresses_with_a_dead_one_first_still_reach_each_service(settings) -> None:  # type: ignore[no-untyped-def]
    """ELASTICSEARCH_URL and NATS_URL take a comma-separated list (the nodes of a cluster): with the
    first address dead, the clients go on with the next one."""
    dead_first = NatsPublisher(url=f"nats://127.0.0.1:1, {settings.NATS_URL}", timeout=2)

    async def close(client):  # type: ignore[no-untyped-def]
        await client.close()

    try:
        assert _nats_round_trip(dead_first, b"via the second address") == b"via the second address"
    finally:
        dead_first.run(close)

    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:1,{settings.ELASTICSEARCH_URL}"
    try:
        es.configure()
        for _ in range(4):  # the client picks nodes in turn: every request lands, the dead node or not
            assert es.client().info()["version"]["number"].startswith("8.")
    finally:
        settings.ELASTICSEARCH_URL = settings.ELASTICSEARCH_URL.split(",", 1)[1]
        es.configure()
