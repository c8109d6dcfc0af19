"""The one client of the JSON API in the tests: Django's test client with a Bearer token, JSON bodies
and an Idempotency-Key, so that no module spells those headers or encodings itself. Tests of malformed
input (raw bytes, wrong content types, broken headers) use Django's client directly, on purpose."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

JSON = "application/json"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of one request, for a test that sends several tokens from one client."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


class ApiClient(Client):
    """A test client of the JSON API: `ApiClient()` anonymous, `ApiClient(token)` or
    `ApiClient.for_user(user)` with a Bearer token on every request."""

    def __init__(self, token: str | None = None, **defaults: Any) -> None:
        super().__init__(**(bearer(token) if token else {}), **defaults)

    @classmethod
    def for_user(cls, user: Any) -> ApiClient:
        """A client with a token issued to `user` directly (no log-in request)."""
        from accounts.services import issue_token

        return cls(issue_token(user=user).auth_token)

    def send(
        self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None, **extra: Any
    ) -> Any:
        """`method` on `path` with `body` (if any) as JSON and the Idempotency-Key header (if given)."""
        if idempotency_key is not None:
            extra["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        if body is not None:
            extra.update(data=json.dumps(body), content_type=JSON)
        return getattr(self, method.lower())(path, **extra)

    def post_json(self, path: str, body: Any, **options: Any) -> Any:
        return self.send("post", path, body, **options)

    def patch_json(self, path: str, body: Any, **options: Any) -> Any:
        return self.send("patch", path, body, **options)

    def log_in(self, email: str, password: str, **extra: Any) -> Any:
        """POST /api/login; the answer as it is (the client keeps no token from it)."""
        return self.post_json("/api/login", {"email": email, "password": password}, **extra)

    def login_token(self, email: str, password: str) -> str:
        """The token of a log-in that must succeed."""
        response = self.log_in(email, password)
        assert response.status_code == 200, response.content
        return response.json()["auth_token"]


def api_client(user: Any) -> ApiClient:
    """A client of the JSON API signed in as `user`."""
    return ApiClient.for_user(user)
