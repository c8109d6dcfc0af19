"""The authentication backend of the pages' sessions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from accounts import selectors
from accounts.models import User


class CachedUserBackend(ModelBackend):
    """Django's ModelBackend (email and password log-in, permissions), except that the user of a session is
    read through the auth cache in Redis, as the API's token user is (accounts/auth_cache.py): a signed-in
    page costs no database query, and keeps working while the database fails over."""

    def get_user(self, user_id: Any) -> User | None:
        try:
            user = selectors.active_user(user_id=int(user_id))
        except (TypeError, ValueError):
            return None  # not an id this backend issued
        return user if user is not None and self.user_can_authenticate(user) else None
