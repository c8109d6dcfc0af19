"""`manage.py cart_events`: follow the cart event stream, or relay the events pending in carts.

manage.py cart_events                    # print new events as JSON lines until Ctrl-C
manage.py cart_events --from-start       # everything the stream still holds, then new ones
manage.py cart_events --count 5          # exit after 5 events (scripts, tests)
manage.py cart_events --relay            # a relay candidate: relays while it holds the relay lease, forever
manage.py cart_events --relay --once     # publish what is pending now, then exit (no lease)
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

import nats.errors
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from nats.aio.client import Client
from nats.js.api import DeliverPolicy

from cart import events, relay
from cart.documents import carts_alias
from shopcart.eventbus import EventBusUnavailable, publisher


class Command(BaseCommand):
    help = "Follow the cart events on NATS JetStream (JSON lines), or relay the events pending in carts (--relay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-start", action="store_true", help="start at the oldest event the stream holds")
        parser.add_argument("--count", type=int, metavar="N", help="exit after N events")
        parser.add_argument(
            "--idle-timeout", type=float, metavar="SECONDS", help="exit with status 1 after SECONDS without an event"
        )
        parser.add_argument("--relay", action="store_true", help="publish the events pending in carts")
        parser.add_argument("--once", action="store_true", help="with --relay: one pass, then exit")
        parser.add_argument(
            "--interval", type=float, default=None, metavar="SECONDS", help="with --relay: pause between passes"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["relay"]:
                self._relay(once=options["once"], interval=options["interval"])
            else:
                self._follow(
                    from_start=options["from_start"], count=options["count"], idle_timeout=options["idle_timeout"]
                )
        except KeyboardInterrupt:
            self.stderr.write("stopped")

    # -- relay -------------------------------------------------------------------------------------

    def _relay(self, *, once: bool, interval: float | None) -> None:
        if not once:
            # A candidate for the one relay lease, like each web worker's thread (cart.relay): it relays
            # while it holds the lease, and takes over within CART_RELAY_LEASE_SECONDS when the holder dies.
            self.stderr.write(f"relaying the events pending in {carts_alias()} while holding the relay lease")
            relay.run_forever(role="cart_events", interval=interval)
            return
        # --once is for operators draining by hand (and tests): no lease (it is safe beside a leader: every
        # removal is conditional and JetStream drops a duplicate), no grace period, and a refresh first so
        # the search sees every cart written until now; everything pending goes now.
        result = events.relay_pending(grace=0, refresh=True)
        self.stdout.write(f"published {result.published}; {result.remaining} waiting")
        if result.nats_down:
            self.stderr.write("NATS is unreachable; events stay pending in their carts")
        if result.remaining:
            sys.exit(1)

    # -- follow ------------------------------------------------------------------------------------

    def _follow(self, *, from_start: bool, count: int | None, idle_timeout: float | None) -> None:
        stream, prefix = settings.CART_EVENTS_STREAM, settings.CART_EVENTS_SUBJECT_PREFIX
        policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
        self.stderr.write(f"following stream {stream} ({prefix}.>)")
        subscription: Any = None
        seen = 0
        last_event = time.monotonic()

        async def subscribe(client: Client) -> Any:
            js = client.jetstream(timeout=publisher().timeout)
            # An ordered consumer: ephemeral, in order, and it recovers by itself after a reconnect.
            return await js.subscribe(f"{prefix}.>", stream=stream, ordered_consumer=True, deliver_policy=policy)

        async def next_message(client: Client) -> Any:
            try:
                return await subscription.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return None

        try:
            while count is None or seen < count:
                try:
                    if subscription is None:
                        events.ensure_stream(stream=stream, prefix=prefix)
                        subscription = publisher().run(subscribe)
                    message = publisher().run(next_message, timeout=2.0)
                except EventBusUnavailable as exc:
                    self.stderr.write(f"NATS unavailable ({exc}); retrying")
                    time.sleep(1.0)
                    message = None
                if message is None:
                    if idle_timeout is not None and time.monotonic() - last_event > idle_timeout:
                        self.stderr.write(f"no event for {idle_timeout:.0f}s; {seen} seen")
                        sys.exit(1)
                    continue
                last_event = time.monotonic()
                seen += 1
                try:
                    event = json.loads(message.data)
                except ValueError:
                    event = message.data.decode(errors="replace")
                line = {"seq": message.metadata.sequence.stream, "subject": message.subject, "event": event}
                self.stdout.write(json.dumps(line, sort_keys=True))
                self.stdout.flush()
        finally:
            if subscription is not None:

                async def unsubscribe(client: Client) -> None:
                    await subscription.unsubscribe()

                with contextlib.suppress(EventBusUnavailable):
                    publisher().run(unsubscribe)
