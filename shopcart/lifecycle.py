"""A replica's shutdown, as its load balancer and /readyz see it.

gunicorn stops a worker with SIGTERM: the worker stops accepting and finishes its in-flight requests
within `graceful_timeout`. Two things are added here (installed by the hooks in gunicorn_conf.py):

* the process is marked *draining*, and /readyz answers 503 from then on, so anything still asking
  this replica (an orchestrator's probe, a kept-alive connection) learns it is going away;
* the worker accepts the connections the kernel has already queued, then closes its listening
  socket. gunicorn's threaded worker only stops polling it, leaving it open until the worker exits:
  connections arriving meanwhile complete the TCP handshake, wait unanswered, and are reset at
  exit, which nginx cannot retry for a POST (the request was sent). With the socket closed, a new
  connection is refused at once and nginx passes the request to another replica, POSTs included.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

_draining = threading.Event()
# Upper bound on connections taken from the kernel's queue while closing: the queue is short (the
# listen backlog), and a bound keeps a flood from holding the worker's loop.
_MAX_QUEUED_ACCEPTS = 2048


def is_draining() -> bool:
    return _draining.is_set()


def mark_draining() -> None:
    _draining.set()


def install_drain_on_sigterm(worker: Any) -> None:
    """Run from gunicorn's `post_worker_init`: chain a handler in front of the worker's own SIGTERM
    handler (installed by then), which still does gunicorn's graceful stop."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        mark_draining()
        if callable(previous):
            previous(signum, frame)
        # The listener belongs to the worker's event loop: close it there, not inside a signal handler
        # that may have interrupted that loop halfway through an accept.
        method_queue = getattr(worker, "method_queue", None)
        if method_queue is not None and hasattr(worker, "set_accept_enabled"):
            method_queue.defer(_stop_listening, worker)

    signal.signal(signal.SIGTERM, on_sigterm)
    # As gunicorn does for its own handler: a SIGTERM must not break a system call of a running request.
    signal.siginterrupt(signal.SIGTERM, False)


def _stop_listening(worker: Any) -> None:
    """On the worker's loop (gthread): take what is already queued, then close the listening sockets."""
    try:
        worker.set_accept_enabled(False)
        for listener in worker.sockets:
            for _ in range(_MAX_QUEUED_ACCEPTS):
                before = worker.nr_conns
                worker.accept(listener)  # non-blocking; returns without a connection once the queue is empty
                if worker.nr_conns == before:
                    break
            listener.close()
    except Exception:  # never let this break gunicorn's own graceful stop
        logger.exception("could not close the listening sockets early; gunicorn closes them at exit")
