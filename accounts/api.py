"""JSON API routes of the accounts app (mounted by shopcart/api.py): the original's register and
login, plus logout (token revocation) and `me`. Errors are domain errors, shaped by shopcart/http_errors.py."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema, Status

from accounts import services
from accounts.auth import bearer_auth, token_claims
from accounts.http import client_address
from accounts.models import User
from shopcart.http_errors import COMMON_ERROR_RESPONSES, ErrorOut

router = Router(tags=["accounts"])


class RegisterIn(Schema):
    name: str
    # A plain str: EmailStr needs email-validator; the service validates with Django's validator.
    email: str
    password: str


class UserOut(Schema):
    id: int
    name: str
    email: str


class LoginIn(Schema):
    email: str
    password: str


class TokenOut(Schema):
    auth_token: str
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int


@router.post("/register", response={201: UserOut, 409: ErrorOut, **COMMON_ERROR_RESPONSES}, summary="Create an account")
def register(request: HttpRequest, payload: RegisterIn) -> Status[User]:
    """409 when the email address is taken in any letter case; 400 with `fields` otherwise."""
    user = services.register_user(name=payload.name, email=payload.email, password=payload.password)
    return Status(201, user)


@router.post(
    "/login", response={200: TokenOut, 401: ErrorOut, 429: ErrorOut, **COMMON_ERROR_RESPONSES}, summary="Get a token"
)
def login(request: HttpRequest, payload: LoginIn) -> services.IssuedToken:
    """A Bearer token valid on every replica for `expires_in` seconds. 429 with `Retry-After` after
    too many failures for the account or from the client address."""
    user = services.authenticate_for_login(
        email=payload.email, password=payload.password, client_address=client_address(request)
    )
    return services.issue_token(user=user)


@router.post(
    "/logout",
    response={204: None, 401: ErrorOut, **COMMON_ERROR_RESPONSES},
    auth=bearer_auth,
    summary="Revoke the token",
)
def logout(request: HttpRequest) -> Status[None]:
    """Revokes the presented token on every replica; other tokens of the user stay valid."""
    services.revoke_token(claims=token_claims(request))
    return Status(204, None)


@router.get(
    "/me",
    response={200: UserOut, 401: ErrorOut, **COMMON_ERROR_RESPONSES},
    auth=bearer_auth,
    summary="The token's user",
)
def me(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined,return-value]
