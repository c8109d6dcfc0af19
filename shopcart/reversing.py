"""`reverse()` once per URL configuration: it costs ~25 us a call (resolver lookups through thread-locals),
and some addresses are on every page (the header's six) or every product of a listing (the generated
image's). What it gives depends only on the name, the arguments, the script prefix and the URLconf."""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.urls import get_script_prefix, get_urlconf, reverse

_reversed: dict[tuple[Any, ...], str] = {}
_lock = threading.Lock()


def _forget(**_: Any) -> None:
    with _lock:
        _reversed.clear()


setting_changed.connect(_forget)  # ROOT_URLCONF overridden in a test, say


def reverse_once(viewname: str, *args: str) -> str:
    """`reverse(viewname, args=args)`, kept per script prefix and URLconf (NoReverseMatch is not kept)."""
    key = (get_script_prefix(), get_urlconf(), viewname, args)
    url = _reversed.get(key)
    if url is None:
        url = reverse(viewname, args=list(args))
        with _lock:
            _reversed[key] = url
    return url
