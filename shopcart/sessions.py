"""The session engine: Django's cache sessions (in Redis), except that Redis being unreachable is an
error, not an empty session.

Django's cache backend treats any error while loading a session as "no such session" (meant for
memcached's invalid keys). With Redis down, a signed-in shopper would then silently look logged out:
the cart page would show an empty cart and the staff pages the log-in form. Re-raising a dependency
error instead gives them the 503 page (shopcart.views.server_error) until Redis is back, with the
session intact.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore

from shopcart.http_errors import unavailable_dependency


class SessionStore(CacheSessionStore):
    def load(self) -> dict[str, Any]:
        try:
            session_data = self._cache.get(self.cache_key)
        except Exception as exc:
            if unavailable_dependency(exc) is not None:
                raise
            session_data = None  # what Django does for any other error (see #17810)
        if session_data is not None:
            return session_data
        self._session_key = None
        return {}
