"""Users: Django's auth user, identified by email (unique regardless of case) and with a display name."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


def normalize_email(email: str) -> str:
    """The one spelling of an address that is stored and looked up: trimmed and lower-cased, so
    "Ann@Example.com" and "ann@example.com " are the same account (and the same throttle key)."""
    return email.strip().lower()


class ShopUserManager(UserManager["User"]):
    def _create_user(self, email: str, password: str | None, **extra_fields: Any) -> User:  # type: ignore[override]
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields: Any) -> User:  # type: ignore[override]
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields: Any) -> User:  # type: ignore[override]
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email__iexact=email)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    name = models.CharField("name", max_length=150)
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    objects = ShopUserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        # Runs before the unique checks in ModelForms (admin), so "Ann@x.com" is stored lower-case
        # and collides with "ann@x.com" as a normal field error rather than at the database.
        super().clean()
        self.email = normalize_email(self.email or "")

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name
