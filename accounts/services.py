"""Writes and side effects of the accounts app. Keyword-only arguments; failures are domain errors
(accounts.errors), which the API and the pages translate."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import email_change, throttling, tokens
from accounts.errors import (
    EmailChangeLinkInvalid,
    EmailChangeThrottled,
    EmailTaken,
    InvalidAccountChange,
    InvalidCredentials,
    InvalidRegistration,
    PasswordResetThrottled,
)
from accounts.models import User, normalize_email
from accounts.selectors import email_change_for_link, email_taken
from cart import services as cart_services
from shopcart.mail import send_later

# A display name is shown in every page's header: long enough for any real name, short enough to fit
# (issue 17). The column allows more, for names stored before this limit; new ones are held to it.
NAME_MAX_LENGTH = 60
EMAIL_TAKEN_MESSAGE = "An account with this email address already exists."


@dataclass(frozen=True)
class IssuedToken:
    auth_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)


def _name_problems(name: str) -> list[str]:
    """What is wrong with a (stripped) display name: sign-up and the account page alike."""
    if not name:
        return ["Enter your name."]
    if len(name) > NAME_MAX_LENGTH:
        return [f"Use at most {NAME_MAX_LENGTH} characters."]
    if "\x00" in name:  # PostgreSQL cannot store it; the pages' forms refuse it in the same words
        return ["Null characters are not allowed."]
    return []


def _email_problems(email: str) -> list[str]:
    """What is wrong with a (normalized) email address: sign-up and an email change alike."""
    try:
        validate_email(email)
    except ValidationError:
        return ["Enter a valid email address."] if email else ["Enter your email address."]
    return []


def register_user(*, name: str, email: str, password: str) -> User:
    """Creates an active user. InvalidRegistration (with field errors, including Django's password
    validators) or EmailTaken, whatever the case of the address."""
    name = name.strip()
    email = normalize_email(email)
    fields: dict[str, list[str]] = {}
    if problems := _name_problems(name):
        fields["name"] = problems
    if problems := _email_problems(email):
        fields["email"] = problems
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
        raise PasswordResetThrottled(_too_many("password-reset requests", retry_after), retry_after=retry_after)
    for scope, key, limit in limits:
        throttling.hit(scope=scope, key=key, limit=limit, window=settings.PASSWORD_RESET_WINDOW)


def _too_many(what: str, retry_after: int) -> str:
    minutes = -(-retry_after // 60)
    return f"Too many {what}. Please wait {minutes} minute{'s' if minutes != 1 else ''} and try again."


def issue_token(*, user: User) -> IssuedToken:
    ttl = tokens.token_ttl()
    claims = tokens.new_claims(user_id=user.pk, password_hash=user.password, ttl=ttl)
    return IssuedToken(auth_token=tokens.encode(claims), expires_in=ttl)


def revoke_token(*, claims: tokens.TokenClaims) -> None:
    """Makes the token with these (already verified) claims unusable on every replica until it expires."""
    tokens.revoke(claims)


@dataclass(frozen=True)
class DemoAccount:
    role: str  # "shopper" or "staff"
    label: str
    email: str
    configured_by: str  # the setting that may give its password (empty: one is generated)
    name: str
    staff: bool


def demo_accounts() -> list[DemoAccount]:
    """The demo shopper and the staff user `manage.py seed` creates (DEMO_USER_*, STAFF_USER_*)."""
    shopper = {"role": "shopper", "label": "demo shopper", "name": "Demo Shopper", "staff": False}
    staff = {"role": "staff", "label": "staff user", "name": "Shop Staff", "staff": True}
    return [
        DemoAccount(**shopper, email=normalize_email(settings.DEMO_USER_EMAIL), configured_by="DEMO_USER_PASSWORD"),
        DemoAccount(**staff, email=normalize_email(settings.STAFF_USER_EMAIL), configured_by="STAFF_USER_PASSWORD"),
    ]


def _demo_password(account: DemoAccount) -> tuple[str, str]:
    """The password to give a demo account, and how to show it: a generated one is shown (that is the
    only way to learn it); one from the environment is named, never printed."""
    if configured := getattr(settings, account.configured_by):
        return configured, f"(the password in {account.configured_by})"
    generated = secrets.token_urlsafe(12)
    return generated, f"password: {generated}"


def _create_demo_user(account: DemoAccount, *, password: str) -> User:
    create = User.objects.create_superuser if account.staff else User.objects.create_user
    return create(email=account.email, password=password, name=account.name)


def ensure_demo_users() -> list[str]:
    """Create the demo shopper and the staff user unless they exist (manage.py seed). A password left
    empty in the settings is generated and shown in the returned lines; existing users are left as they
    are, and the lines say how to get a login for them (`make logins`: reset_demo_logins)."""
    lines = []
    for account in demo_accounts():
        if email_taken(email=account.email):
            lines.append(f"The {account.label} {account.email} exists already; `make logins` gives it a new password.")
            continue
        password, shown = _demo_password(account)
        _create_demo_user(account, password=password)
        lines.append(f"Created the {account.label} {account.email} {shown}")
    return lines


def reset_demo_logins(*, roles: Sequence[str] = ("shopper", "staff")) -> list[str]:
    """A login for each demo account of `roles` that works now (`make logins`, manage.py demo_logins):
    created if missing, otherwise given a new password (generated and shown, or the one in the settings,
    named but never shown) and made active (the staff user: staff and superuser), which ends its sessions
    and tokens. For a newcomer who missed what the first `seed` printed."""
    lines = []
    for account in demo_accounts():
        if account.role not in roles:
            continue
        password, shown = _demo_password(account)
        user = User.objects.filter(email__iexact=account.email).first()
        if user is None:
            _create_demo_user(account, password=password)
        else:
            user.set_password(password)
            user.is_active = True
            if account.staff:
                user.is_staff = user.is_superuser = True
            user.save()
        lines.append(f"The {account.label}: {account.email} {shown}")
    return lines


# --- one's own account: name, email, password, deletion (the account page and /api/me) ------------------

WRONG_PASSWORD_MESSAGE = "Your current password is not correct."  # noqa: S105 (a message, not a password)
SAME_PASSWORD_MESSAGE = "Choose a new password: this one is your current password."  # noqa: S105
EMAIL_CHANGE_WINDOW = 60 * 60  # EMAIL_CHANGE_LIMIT mails per account in this many seconds
INVALID_LINK_MESSAGE = (
    "This link does not work any more: it was used, it expired, a newer one was sent, or the password "
    "changed since. Ask for a new one on your account page."
)


def _check_current_password(*, user: User, password: str) -> None:
    """The current password, as every change to one's account asks for it (someone at an unlocked screen
    must not change the email or delete the account): throttled like log-ins, per account (LoginThrottled
    before the password is even looked at), and each wrong one counted."""
    throttling.check_password_change(user_id=user.pk)
    if not password or not user.check_password(password):
        throttling.record_wrong_current_password(user_id=user.pk)
        raise InvalidAccountChange("Some fields are invalid.", fields={"current_password": [WRONG_PASSWORD_MESSAGE]})


def new_password_problems(*, user: User, password: str) -> list[str]:
    """Why `password` cannot be `user`'s new password: it is the current one, or Django's validators say
    so. The one rule of the page's form and the API."""
    if user.check_password(password):
        return [SAME_PASSWORD_MESSAGE]
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        return list(exc.messages)
    return []


def update_name(*, user: User, name: str) -> User:
    name = name.strip()
    if problems := _name_problems(name):
        raise InvalidAccountChange("Some fields are invalid.", fields={"name": problems})
    user.name = name
    user.save(update_fields=["name"])
    return user


def change_password(*, user: User, current_password: str, new_password: str) -> User:
    """Sets a new password (not the current one; Django's validators). Every session and API token issued
    under the old one stops working (both carry a fingerprint of the password hash); the caller keeps
    its own session (update_session_auth_hash) or issues a new token."""
    _check_current_password(user=user, password=current_password)
    if problems := new_password_problems(user=user, password=new_password):
        raise InvalidAccountChange("Some fields are invalid.", fields={"new_password": problems})
    user.set_password(new_password)
    user.save(update_fields=["password"])
    throttling.record_password_changed(user_id=user.pk)
    return user


def request_email_change(*, user: User, email: str, current_password: str, site_url: str) -> str:
    """Mails a confirmation link to the new address (`site_url`: this site's address, for the link) and
    returns that address, normalized. Nothing changes until the link is followed
    (`confirm_email_change`); a newer request replaces the older one's link. InvalidAccountChange (the
    address, the current password), EmailTaken (any letter case), EmailChangeThrottled."""
    email = normalize_email(email)
    problems = _email_problems(email) or (["That is your email address already."] if email == user.email else [])
    if problems:
        raise InvalidAccountChange("Some fields are invalid.", fields={"email": problems})
    _check_current_password(user=user, password=current_password)
    if email_taken(email=email):
        raise EmailTaken(EMAIL_TAKEN_MESSAGE, fields={"email": [EMAIL_TAKEN_MESSAGE]})
    scope, key = throttling.EMAIL_CHANGE, str(user.pk)
    if retry_after := throttling.blocked(scope=scope, key=key):
        raise EmailChangeThrottled(_too_many("email-change requests", retry_after), retry_after=retry_after)
    throttling.hit(scope=scope, key=key, limit=settings.EMAIL_CHANGE_LIMIT, window=EMAIL_CHANGE_WINDOW)
    nonce = secrets.token_urlsafe(12)
    cache.set(email_change.pending_key(user.pk), {"email": email, "nonce": nonce}, settings.EMAIL_CHANGE_TIMEOUT)
    token = email_change.make_token(user_id=user.pk, nonce=nonce, password_hash=user.password)
    link = urljoin(site_url, reverse("accounts:email_change_confirm", args=[token]))
    minutes = settings.EMAIL_CHANGE_TIMEOUT // 60
    valid_for = f"{minutes // 60} hours" if minutes >= 120 else f"{max(1, minutes)} minutes"
    context = {"user": user, "new_email": email, "link": link, "valid_for": valid_for}
    _mail(email, "accounts/email_change_subject.txt", "accounts/email_change_email.txt", context)
    return email


def cancel_email_change(*, user: User) -> None:
    """The pending change's link stops working."""
    cache.delete(email_change.pending_key(user.pk))


def confirm_email_change(*, token: str) -> User:
    """Follows an email-change link: the account's address becomes the one the link was mailed to, if the
    link is this account's latest, within EMAIL_CHANGE_TIMEOUT, and from before no password change.
    EmailChangeLinkInvalid otherwise; EmailTaken if another account took the address meanwhile (the
    case-insensitive unique constraint decides a race). The old address is told."""
    found = email_change_for_link(token=token)
    if found is None:
        raise EmailChangeLinkInvalid(INVALID_LINK_MESSAGE)
    user, new_email = found
    old_email, user.email = user.email, new_email
    if email_taken(email=new_email, except_user_id=user.pk):  # not itself: a double submit is done, not taken
        raise EmailTaken(EMAIL_TAKEN_MESSAGE, fields={"email": [EMAIL_TAKEN_MESSAGE]})
    try:
        with transaction.atomic():
            user.save(update_fields=["email"])
    except IntegrityError as exc:  # another account took it between the check and the write
        raise EmailTaken(EMAIL_TAKEN_MESSAGE, fields={"email": [EMAIL_TAKEN_MESSAGE]}) from exc
    cache.delete(email_change.pending_key(user.pk))
    _mail(
        old_email,
        "accounts/email_changed_subject.txt",
        "accounts/email_changed_email.txt",
        {"user": user, "old_email": old_email},
    )
    return user


def delete_account(*, user: User, current_password: str) -> None:
    """Deletes the account and its cart, once the current password is given. The cart goes first, with a
    `cleared` event for its lines like any emptying (cart.services.delete_user_cart): if it cannot (a
    service is down) the account stays and the error says so. The account's sessions and API tokens stop
    working with it; the caller logs its own session out."""
    _check_current_password(user=user, password=current_password)
    cart_services.delete_user_cart(user_id=user.pk)
    cancel_email_change(user=user)
    user.delete()


def _mail(to: str, subject_template: str, body_template: str, context: dict[str, Any]) -> None:
    subject = "".join(render_to_string(subject_template, context).splitlines())
    send_later(EmailMultiAlternatives(subject, render_to_string(body_template, context), None, [to]))
