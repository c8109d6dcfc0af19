"""Production settings: the shared base plus HTTPS hardening. `manage.py check --deploy` is clean here.

SECRET_KEY has no default: a deployment must set one, the same on every replica.
"""

from django.core.exceptions import ImproperlyConfigured

from shopcart.secret_key import unpublished

from .base import *  # noqa: F403
from .base import FAULT_HOOK_SETTINGS, env

# The test-only fault hooks kill or freeze processes on purpose: production refuses to start with one set
# (a stray variable from a test run must never reach a deployment); unset, each is "" (base).
for _hook in FAULT_HOOK_SETTINGS:
    if env.str(_hook, default=""):
        raise ImproperlyConfigured(f"{_hook} is a test-only fault hook and cannot be set under production settings.")

DEBUG = False
SECRET_KEY = unpublished(env.str("SECRET_KEY"))
WHITENOISE_USE_FINDERS = False

# TLS terminates at the load balancer, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
