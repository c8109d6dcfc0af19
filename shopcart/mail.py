"""Sending email after the response: a request that sends mail must not take longer than one that
does not (a password-reset page would otherwise tell, by its timing, whether an address has an
account), and a slow SMTP server must not hold a web worker.

One daemon thread per process delivers the queued messages in order through EMAIL_BACKEND. A
failure is logged, never raised: the page has already answered. A message still queued when the
process is killed is lost; the user asks again."""

from __future__ import annotations

import logging
import queue
import threading

from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)

_queue: queue.Queue[EmailMessage] = queue.Queue()
_worker_lock = threading.Lock()
_worker: threading.Thread | None = None


def _deliver_forever() -> None:
    while True:
        message = _queue.get()
        try:
            message.send()
        except Exception:
            logger.exception("Could not send the email %r to %s", message.subject, ", ".join(message.to))
        finally:
            _queue.task_done()


def send_later(message: EmailMessage) -> None:
    """Queue `message` for the sender thread (started on first use, and again in a forked worker)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_deliver_forever, name="mail-sender", daemon=True)
            _worker.start()
    _queue.put(message)


def wait_until_sent(timeout: float = 10.0) -> bool:
    """True once every queued message has been handed to the backend (tests, management commands)."""
    done = threading.Event()

    def join() -> None:
        _queue.join()
        done.set()

    threading.Thread(target=join, daemon=True).start()
    return done.wait(timeout)
