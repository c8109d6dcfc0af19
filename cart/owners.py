"""Which cart a request works on. There is no cart id in any URL or form: it always comes from the
signed-in user or, for an anonymous shopper, from a random id kept in the (server-side) session."""

from __future__ import annotations

import re
import secrets

from django.http import HttpRequest

# The session key holding an anonymous shopper's cart id. A random id rather than the session key:
# Django changes the session key at log-in (cycle_key), and the merge must still find the cart.
SESSION_KEY = "cart_anon_id"
_ANON_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def user_cart_id(user_id: int | str) -> str:
    return f"user-{user_id}"


def anonymous_cart_id(anon_id: str) -> str:
    return f"anon-{anon_id}"


def session_anon_id(request: HttpRequest) -> str | None:
    """The anonymous cart's random id from the session, or None (without creating a session)."""
    session = getattr(request, "session", None)
    value = session.get(SESSION_KEY) if session is not None else None
    return value if isinstance(value, str) and _ANON_ID.match(value) else None


def cart_id_for_request(request: HttpRequest, *, create: bool = False) -> str | None:
    """The cart of the user, or of the anonymous session. Without `create`, an anonymous visitor who
    never added anything has no cart (None) and no session is started for them."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user_cart_id(user.pk)
    anon_id = session_anon_id(request)
    if anon_id is None and create:
        anon_id = secrets.token_urlsafe(18)
        request.session[SESSION_KEY] = anon_id
    return anonymous_cart_id(anon_id) if anon_id else None
