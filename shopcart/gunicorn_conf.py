"""gunicorn settings for `make run`, the local replicas (devstack/replicas.sh) and the container; each
can be overridden from the environment."""

import os
from typing import Any

# Two cores here: two workers with a few threads each keeps both busy while requests wait on ES/Redis.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM lets in-flight requests finish for this long before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"


def post_worker_init(worker: Any) -> None:
    """On SIGTERM: /readyz answers 503 and the worker stops taking new connections at once, while its
    in-flight requests finish (shopcart/lifecycle.py)."""
    from cart import relay
    from shopcart import lifecycle

    lifecycle.install_drain_on_sigterm(worker)
    # Every worker is a candidate for the one relay lease from its start (cart.relay): whichever holds it
    # publishes what killed workers left behind and clears published events from idle carts.
    relay.ensure_relay_thread()


def worker_exit(server: Any, worker: Any) -> None:
    # A worker stopping gracefully gives the relay lease up, so another leads at once.
    from cart import relay

    relay.release_leases()


def worker_int(worker: Any) -> None:
    # SIGINT/SIGQUIT: a quick stop, but /readyz should still say so for the moment it takes.
    from shopcart import lifecycle

    lifecycle.mark_draining()


def worker_abort(worker: Any) -> None:
    # SIGABRT after a worker timeout: it is about to die.
    from shopcart import lifecycle

    lifecycle.mark_draining()
