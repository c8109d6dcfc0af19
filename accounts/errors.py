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


class LoginThrottled(Throttled):
    """Too many failed log-ins for this account or from this client address."""


class PasswordResetThrottled(Throttled):
    """Too many password-reset requests for this email address or from this client address."""
