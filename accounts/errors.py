"""Domain errors of the accounts app. Each subclasses a kind from shopcart.errors; shopcart.http_errors
decides the HTTP status (API), views how a page shows it; services raise these and never speak HTTP."""

from __future__ import annotations

from shopcart.errors import Conflict, Invalid, NotAuthenticated, Throttled


class InvalidRegistration(Invalid):
    """Sign-up data failed validation; `fields` maps each field to its messages."""


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"


class InvalidAccountChange(Invalid):
    """A change to one's own account (name, email, password, deletion) failed validation; `fields` maps
    each field (`name`, `email`, `current_password`, `new_password`) to its messages."""


class EmailChangeLinkInvalid(Invalid):
    """An email-change link that is forged, expired, used, replaced by a newer one, or from before a
    password change."""

    code = "invalid_link"


class EmailChangeThrottled(Throttled):
    """Too many email-change mails for this account."""


class LoginThrottled(Throttled):
    """Too many failed log-ins for this account or from this client address."""


class PasswordResetThrottled(Throttled):
    """Too many password-reset requests for this email address or from this client address."""
