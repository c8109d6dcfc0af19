"""Writes and side effects of the accounts app. Keyword-only arguments; failures are domain errors
(accounts.errors), which the API and the pages translate."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts import throttling, tokens
from accounts.errors import EmailTaken, InvalidCredentials, InvalidRegistration, PasswordResetThrottled
from accounts.models import User, normalize_email
from accounts.selectors import email_taken

NAME_MAX_LENGTH = User._meta.get_field("name").max_length or 150
EMAIL_TAKEN_MESSAGE = "An account with this email address already exists."


@dataclass(frozen=True)
class IssuedToken:
    auth_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)


def register_user(*, name: str, email: str, password: str) -> User:
    """Creates an active user. InvalidRegistration (with field errors, including Django's password
    validators) or EmailTaken, whatever the case of the address."""
    name = name.strip()
    email = normalize_email(email)
    fields: dict[str, list[str]] = {}
    if not name:
        fields["name"] = ["Enter your name."]
    elif len(name) > NAME_MAX_LENGTH:
        fields["name"] = [f"Use at most {NAME_MAX_LENGTH} characters."]
    elif "\x00" in name:  # PostgreSQL cannot store it; the pages' forms refuse it in the same words
        fields["name"] = ["Null characters are not allowed."]
    try:
        validate_email(email)
    except ValidationError:
        fields["email"] = ["Enter a valid email address."] if email else ["Enter your email address."]
    if not password:
        fields["password"] = ["Enter a password."]
    else:
        try:
            # The unsaved user lets UserAttributeSimilarityValidator compare with the name and email.
            validate_password(password, user=User(name=name, email=email))
        except ValidationError as exc:
            fields["password"] = list(exc.messages)
    if fields:
        raise InvalidRegistration("Some fields are invalid.", fields=fields)
    if email_taken(email=email):
        raise EmailTaken(EMAIL_TAKEN_MESSAGE, fields={"email": [EMAIL_TAKEN_MESSAGE]})
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError as exc:
        # A concurrent sign-up won the race; the case-insensitive unique constraint caught it.
        raise EmailTaken(EMAIL_TAKEN_MESSAGE, fields={"email": [EMAIL_TAKEN_MESSAGE]}) from exc


def authenticate_for_login(*, email: str, password: str, client_address: str) -> User:
    """The user these credentials belong to, if neither the account nor the address is throttled.
    LoginThrottled is checked *before* the password, so a blocked guesser learns nothing, even when
    the guess is right. The caller starts the session (pages) or issues a token (API)."""
    email = normalize_email(email)
    throttling.check(email=email, client_address=client_address)
    user = authenticate(None, username=email, password=password)  # None also for inactive users
    if user is None:
        throttling.record_failure(email=email, client_address=client_address)
        raise InvalidCredentials("The email address or password is incorrect.")
    throttling.record_success(email=email, client_address=client_address)
    return user


def check_password_change_allowed(*, user: User) -> None:
    """LoginThrottled while the user's wrong current passwords (password-change form) have blocked it."""
    throttling.check_password_change(user_id=user.pk)


def record_wrong_current_password(*, user: User) -> None:
    throttling.record_wrong_current_password(user_id=user.pk)


def record_password_changed(*, user: User) -> None:
    throttling.record_password_changed(user_id=user.pk)


def allow_password_reset(*, email: str, client_address: str) -> None:
    """Counts one password-reset request; PasswordResetThrottled when the email address or the client
    address has asked too often. Counted whether or not the address has an account, so the answer
    tells nothing about that either."""
    limits = (
        ("password-reset:email", normalize_email(email), settings.PASSWORD_RESET_EMAIL_LIMIT),
        ("password-reset:address", client_address, settings.PASSWORD_RESET_ADDRESS_LIMIT),
    )
    if retry_after := max(throttling.blocked(scope=scope, key=key) for scope, key, _ in limits):
        minutes = -(-retry_after // 60)
        raise PasswordResetThrottled(
            f"Too many password-reset requests. Please wait {minutes} minute{'s' if minutes != 1 else ''} "
            "and try again.",
            retry_after=retry_after,
        )
    for scope, key, limit in limits:
        throttling.hit(scope=scope, key=key, limit=limit, window=settings.PASSWORD_RESET_WINDOW)


def issue_token(*, user: User) -> IssuedToken:
    ttl = tokens.token_ttl()
    claims = tokens.new_claims(user_id=user.pk, password_hash=user.password, ttl=ttl)
    return IssuedToken(auth_token=tokens.encode(claims), expires_in=ttl)


def revoke_token(*, claims: tokens.TokenClaims) -> None:
    """Makes the token with these (already verified) claims unusable on every replica until it expires."""
    tokens.revoke(claims)


def ensure_demo_users() -> list[str]:
    """Create the demo shopper and the staff user unless they exist (manage.py seed). Their emails and
    passwords come from settings (DEMO_USER_*, STAFF_USER_*); a password left empty is generated and
    reported in the returned lines, the only time it is ever shown. Existing users are left as they are."""
    lines = []
    accounts = [
        ("demo shopper", settings.DEMO_USER_EMAIL, settings.DEMO_USER_PASSWORD, "Demo Shopper", False),
        ("staff user", settings.STAFF_USER_EMAIL, settings.STAFF_USER_PASSWORD, "Shop Staff", True),
    ]
    for role, email, password, name, staff in accounts:
        if email_taken(email=email):
            lines.append(f"The {role} {normalize_email(email)} exists already.")
            continue
        chosen = password or secrets.token_urlsafe(12)
        if staff:
            User.objects.create_superuser(email=email, password=chosen, name=name)
        else:
            User.objects.create_user(email=email, password=chosen, name=name)
        shown = "(password from the environment)" if password else f"password: {chosen}"
        lines.append(f"Created the {role} {normalize_email(email)} {shown}")
    return lines
