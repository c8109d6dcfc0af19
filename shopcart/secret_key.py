"""The local SECRET_KEY: without `SECRET_KEY` in the environment, the key is read from a git-ignored file,
which the first process to start creates with a random key. Every process of the checkout (`make run`,
each `make run REPLICAS=N` replica, `make dev`, `manage.py`) reads the same file, so they share one key,
and no key that is in git ever signs anything. Production requires `SECRET_KEY` instead
(shopcart.settings.production)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Values that have been in this repository (the old local default, the .env.example placeholder): anyone
# can read them, so a .env or an environment still carrying one must not start the shop with it.
PUBLISHED_KEYS = frozenset(
    {"django-insecure-local-dev-only-shopcart-secret-key-change-me", "change-me-to-a-long-random-string"}
)


def unpublished(key: str) -> str:
    """`key`, unless it is one anyone can read in the repository."""
    if key in PUBLISHED_KEYS:
        raise ImproperlyConfigured(
            "SECRET_KEY is a value published in the repository; remove it from the environment or .env "
            "(a random key is then generated into SECRET_KEY_FILE) or set a secret one."
        )
    return key


def load_or_create(path: Path) -> str:
    """The key in `path`, created first if the file does not exist. Replicas start side by side, so the
    file appears atomically (a complete temporary file, hard-linked into place): the first link wins and
    everyone else reads the winner's key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race; its key is the one
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ImproperlyConfigured(f"{path} holds no usable SECRET_KEY; delete it to have a new one generated.")
    return key
