"""The one Bearer auth of the JSON API, used by every router: `Authorization: Bearer <auth_token>` from
POST /api/login; valid on every replica (signed with the shared SECRET_KEY) until it expires or is
revoked (revocations live in Redis). The user becomes `request.auth`, the verified claims
`request.token_claims`, so a route (logout) never parses the header a second time."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts import selectors
from accounts.models import User
from accounts.tokens import TokenClaims


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        found = selectors.user_for_token(token=token)
        if found is None:
            return None
        user, claims = found
        request.token_claims = claims  # type: ignore[attr-defined]
        return user


bearer_auth = BearerTokenAuth()


def token_claims(request: HttpRequest) -> TokenClaims:
    """The claims of the token `bearer_auth` accepted for this request."""
    return request.token_claims  # type: ignore[attr-defined,no-any-return]
