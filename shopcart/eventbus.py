"""The NATS publisher, usable from synchronous Django code.

nats-py is asyncio-only, and Django views here are synchronous. Each process keeps one NATS
connection on a private event loop running in a daemon thread; callers hand it coroutines and wait
for the result with a timeout. No connection is opened per request, and a process forked by
gunicorn starts its own loop and connection on first use instead of inheriting the parent's.

When NATS is down the client keeps reconnecting in the background, and every call fails fast
with `EventBusUnavailable` instead of waiting, so callers can fall back (cart events stay pending in their cart).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
from django.conf import settings
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from shopcart.service_urls import split_urls

T = TypeVar("T")


class EventBusUnavailable(Exception):
    """NATS could not be reached, or did not acknowledge in time."""


class NatsPublisher:
    def __init__(
        self,
        *,
        url: str,
        timeout: float,
        ping_interval: float = 1.0,
        max_outstanding_pings: int = 2,
        reconnect_wait: float = 0.5,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.ping_interval = ping_interval
        self.max_outstanding_pings = max_outstanding_pings
        self.reconnect_wait = reconnect_wait
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None

    # -- public, synchronous API -------------------------------------------------------------

    def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None) -> int:
        """JetStream publish; returns the stream sequence once the server has stored the message.

        `msg_id` becomes the Nats-Msg-Id header, so the stream drops a re-sent duplicate.
        """

        async def _publish() -> int:
            headers = {"Nats-Msg-Id": msg_id} if msg_id else None
            ack = await self._jetstream().publish(subject, payload, timeout=self.timeout, headers=headers)
            return ack.seq

        return self._call(_publish)

    def ping(self) -> None:
        """Round trip to the server; raises EventBusUnavailable if it does not answer."""

        async def _ping() -> None:
            await self._connected().flush(timeout=self.timeout)

        self._call(_ping)

    def ensure_stream(self, *, name: str, subjects: list[str]) -> None:
        """Create the JetStream stream if missing, or update its subjects (idempotent)."""

        async def _ensure() -> None:
            js = self._jetstream()
            config = StreamConfig(name=name, subjects=subjects)
            try:
                await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(config)
            else:
                await js.update_stream(config)

        self._call(_ensure)

    def run(self, factory: Callable[[Client], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run an arbitrary coroutine against the live connection (used by subscribers and tests)."""

        async def _run() -> T:
            return await factory(self._connected())

        return self._call(_run, timeout=timeout)

    # -- internals ---------------------------------------------------------------------------

    def _connected(self) -> Client:
        client = self._client
        if client is None or not client.is_connected:
            raise EventBusUnavailable(f"not connected to NATS at {self.url}")
        return client

    def _jetstream(self) -> JetStreamContext:
        return self._connected().jetstream(timeout=self.timeout)

    def _call(self, coroutine: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        loop = self._ensure_started()
        wait = (timeout or self.timeout) + 0.5
        future = asyncio.run_coroutine_threadsafe(coroutine(), loop)  # type: ignore[arg-type]
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise EventBusUnavailable(f"NATS at {self.url} did not answer within {wait:.1f}s") from exc
        except EventBusUnavailable:
            raise
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise EventBusUnavailable(f"NATS at {self.url}: {exc!r}") from exc

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None and self._pid == os.getpid():
                return self._loop
            # First use in this process (or first use after a fork): a fresh loop and connection.
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="nats-publisher", daemon=True)
            thread.start()
            self._loop, self._pid, self._client = loop, os.getpid(), Client()
            ready = asyncio.run_coroutine_threadsafe(self._connect(self._client), loop)
            # Give a healthy server a moment so the very first call succeeds; if NATS is down the
            # connect keeps retrying in the background.
            with contextlib.suppress(concurrent.futures.TimeoutError):
                ready.result(self.timeout)
            return loop

    async def _connect(self, client: Client) -> None:
        async def _quiet(_: Exception) -> None:
            # Connection errors are reported by callers as EventBusUnavailable; the callback
            # only stops nats-py from logging every reconnect attempt as an error.
            return None

        # Runs until it connects (max_reconnect_attempts=-1 retries forever), then nats-py
        # reconnects on its own after every drop.
        await client.connect(
            servers=split_urls(self.url),
            name=f"shopcart-{os.getpid()}",
            connect_timeout=self.timeout,
            reconnect_time_wait=self.reconnect_wait,
            # Unanswered pings are how a hung server (SIGSTOP, a dead network) is noticed; then the
            # client reconnects to another server of the cluster.
            ping_interval=self.ping_interval,
            max_outstanding_pings=self.max_outstanding_pings,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            error_cb=_quiet,
        )


_publisher: NatsPublisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> NatsPublisher:
    """The process-wide publisher, configured from settings.NATS_URL."""
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = NatsPublisher(
                url=settings.NATS_URL,
                timeout=settings.NATS_TIMEOUT,
                ping_interval=settings.NATS_PING_INTERVAL,
                max_outstanding_pings=settings.NATS_MAX_OUTSTANDING_PINGS,
                reconnect_wait=settings.NATS_RECONNECT_WAIT,
            )
        return _publisher
