"""JSON API routes of the accounts app (mounted by shopcart/api.py): the original's register and
login, plus logout (token revocation), and `me`: one's own account (name, email change by a mailed link,
password, deletion with the cart). Errors are domain errors, shaped by shopcart/http_errors.py."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from accounts import selectors, services
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


class AccountOut(UserOut):
    pending_email: str | None = Field(
        description="The new address a change waits to be confirmed for (by the link mailed there), or null"
    )

    @classmethod
    def of(cls, user: User) -> AccountOut:
        pending = selectors.pending_email_change(user=user)
        return cls(id=user.pk, name=user.name, email=user.email, pending_email=pending)


class NameIn(Schema):
    name: str


class EmailChangeIn(Schema):
    email: str
    current_password: str


class EmailChangeOut(Schema):
    pending_email: str = Field(
        description="Where the confirmation link went; the account's address changes when it is followed"
    )
    expires_in: int = Field(description="Seconds the link works")


class EmailConfirmIn(Schema):
    token: str = Field(
        description="The last part of the link mailed to the new address (/accounts/email/confirm/<token>/)"
    )


class PasswordChangeIn(Schema):
    current_password: str
    new_password: str


class CurrentPasswordIn(Schema):
    current_password: str


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


def _user(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined,no-any-return]


@router.get(
    "/me",
    response={200: AccountOut, 401: ErrorOut, **COMMON_ERROR_RESPONSES},
    auth=bearer_auth,
    summary="The token's user",
)
def me(request: HttpRequest) -> AccountOut:
    return AccountOut.of(_user(request))


@router.patch(
    "/me",
    response={200: AccountOut, 401: ErrorOut, **COMMON_ERROR_RESPONSES},
    auth=bearer_auth,
    summary="Change one's name",
)
def update_me(request: HttpRequest, payload: NameIn) -> AccountOut:
    """400 with `fields.name` for an empty or too long name."""
    return AccountOut.of(services.update_name(user=_user(request), name=payload.name))


# The current password guards every change below: wrong ones are counted per account like log-ins (429
# with Retry-After after LOGIN_FAILURE_LIMIT of them, docs/accounts.md).
GUARDED = {400: ErrorOut, 401: ErrorOut, 429: ErrorOut}


@router.post(
    "/me/email",
    response={202: EmailChangeOut, 409: ErrorOut, **COMMON_ERROR_RESPONSES, **GUARDED},
    auth=bearer_auth,
    summary="Ask to change one's email address",
)
def request_email_change(request: HttpRequest, payload: EmailChangeIn) -> Status[EmailChangeOut]:
    """Mails a link to the new address; the account's address changes only when it is followed (the page
    it opens, or POST /api/email/confirm with its token). A newer request replaces the older link. 409
    `email_taken` when another account has the address in any letter case; 429 after too many mails."""
    email = services.request_email_change(
        user=_user(request),
        email=payload.email,
        current_password=payload.current_password,
        site_url=request.build_absolute_uri("/"),
    )
    return Status(202, EmailChangeOut(pending_email=email, expires_in=settings.EMAIL_CHANGE_TIMEOUT))


@router.delete(
    "/me/email",
    response={204: None, 401: ErrorOut, **COMMON_ERROR_RESPONSES},
    auth=bearer_auth,
    summary="Cancel a pending email change",
)
def cancel_email_change(request: HttpRequest) -> Status[None]:
    """The link already mailed stops working. 204 also when nothing was pending."""
    services.cancel_email_change(user=_user(request))
    return Status(204, None)


@router.post(
    "/email/confirm",
    response={200: AccountOut, 409: ErrorOut, **COMMON_ERROR_RESPONSES},
    summary="Confirm an email change with the mailed link's token",
)
def confirm_email_change(request: HttpRequest, payload: EmailConfirmIn) -> AccountOut:
    """No Bearer token needed: holding the link proves the new address. 400 `invalid_link` for a link that
    expired, was used, was replaced by a newer one or predates a password change; 409 `email_taken` if
    another account took the address meanwhile."""
    return AccountOut.of(services.confirm_email_change(token=payload.token))


@router.post(
    "/me/password",
    response={200: TokenOut, **COMMON_ERROR_RESPONSES, **GUARDED},
    auth=bearer_auth,
    summary="Change one's password",
)
def change_password(request: HttpRequest, payload: PasswordChangeIn) -> services.IssuedToken:
    """Every token and session issued under the old password stops working, this token included; the
    answer is a new token. 400 `fields.new_password` for the current password itself or one the
    password rules refuse, `fields.current_password` for a wrong current password."""
    user = services.change_password(
        user=_user(request), current_password=payload.current_password, new_password=payload.new_password
    )
    return services.issue_token(user=user)


@router.delete(
    "/me",
    response={204: None, **COMMON_ERROR_RESPONSES, **GUARDED},
    auth=bearer_auth,
    summary="Delete one's account and cart",
)
def delete_me(request: HttpRequest, payload: CurrentPasswordIn) -> Status[None]:
    """Deletes the account and its cart (the cart is emptied first, with a `cleared` event like any
    emptying). Its tokens and sessions stop working. 503 while the cart cannot be deleted with its event
    (a service down): then nothing of the account is deleted."""
    services.delete_account(user=_user(request), current_password=payload.current_password)
    return Status(204, None)
