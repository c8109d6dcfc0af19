"""Settings for the test suite: the real local services, isolated by name so a run never touches dev data."""

import os
import uuid

# A test-only key, unless a test asks for the key file (tests/shopcart/test_scaleout.py starts replicas that way).
if not os.environ.get("SECRET_KEY_FILE"):
    os.environ.setdefault("SECRET_KEY", "test-only-key-never-served-" + "0123456789abcdef" * 3)

from .base import *  # noqa: F403
from .base import env

# One id per test session (shared with subprocesses through the environment), used for index and
# stream names so runs never see each other's data.
TEST_RUN_ID = os.environ.setdefault("SHOPCART_TEST_RUN_ID", uuid.uuid4().hex[:8])

# Never taken from ELASTICSEARCH_INDEX_PREFIX, so a .env pointing at dev data cannot leak into tests.
ELASTICSEARCH_INDEX_PREFIX = f"test-{TEST_RUN_ID}"
REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
CACHES = {"default": redis_cache(REDIS_URL, key_prefix=f"test-{TEST_RUN_ID}")}  # noqa: F405

# Published events leave idle carts after seconds, not a minute: the suites wait for it (docs/cart.md).
CART_RELAY_IDLE_SECONDS = env.float("CART_RELAY_IDLE_SECONDS", default=3.0)

# Fast hashing: the tests exercise flows, not bcrypt cost.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The stack's mail catcher (make services-up): the password-reset tests send through EMAIL_HOST:EMAIL_PORT
# and read what arrived here.
MAILCATCHER_URL = env.str("MAILCATCHER_URL", default="http://127.0.0.1:8025")
