"""Settings shared by every environment. Each value comes from the environment, with a default
that works on a developer machine running `make services-up` (see .env.example).

Production adds its hardening in `shopcart.settings.production`.
"""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ

from shopcart.secret_key import load_or_create, unpublished
from shopcart.service_urls import split_urls

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env is optional; real deployments set the environment directly.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# One secret shared by every replica: sessions, CSRF tokens and API tokens are signed with it, so
# any replica accepts what another issued (defect 1 of the original). Never generated per process, and
# never one from the repository (anyone could mint tokens with it): unless SECRET_KEY is set, the key is
# read from SECRET_KEY_FILE, which the first process creates with a random key (shopcart/secret_key.py).
SECRET_KEY_FILE = Path(env.str("SECRET_KEY_FILE", default=str(BASE_DIR / ".devstack" / "secret_key")))
SECRET_KEY = unpublished(env.str("SECRET_KEY", default="")) or load_or_create(SECRET_KEY_FILE)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # django-ninja's Swagger UI assets as static files, so /api/docs works with no network (no CDN).
    "ninja",
    "shopcart.apps.ShopcartConfig",
    "accounts.apps.AccountsConfig",
    "catalog.apps.CatalogConfig",
    "cart.apps.CartConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response, the short-circuited ones (413, 405) included.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "shopcart.middleware.ServedByMiddleware",
    # /api/v0/...: the API in the original's response envelope (docs/original-api.md).
    "shopcart.middleware.OriginalApiMiddleware",
    # /api/: HEAD like GET, and a wrong method is a JSON 405.
    "shopcart.middleware.ApiMethodMiddleware",
    # 413 for an oversized body, before anything reads it: its process_view runs before the CSRF
    # middleware's, which reads the form (and, like every process_view, after request.user is set).
    "shopcart.middleware.RequestBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The largest request body accepted (bytes); bigger ones get a 413 (shopcart.middleware). A real form or
# API call is a few KiB at most.
REQUEST_BODY_LIMIT = env.int("REQUEST_BODY_LIMIT", default=256 * 1024)
# The same for the few forms that take long texts (shopcart.request_bodies.takes_long_text: the staff
# product form, whose description someone may paste far too much into): up to this size the form comes
# back with the text and a field error instead of a 413. Keep it at most nginx's client_max_body_size (1m).
LONG_FORM_BODY_LIMIT = env.int("LONG_FORM_BODY_LIMIT", default=1024 * 1024)
# Django's own limit, behind the middleware's: the larger of the two, so the long forms can be read.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(REQUEST_BODY_LIMIT, LONG_FORM_BODY_LIMIT)

# Content-Security-Policy (django-csp), on every response: scripts and styles only from the shop's own
# static files, so text that slipped past escaping could not run (no 'unsafe-inline', no eval). Pictures
# may come from any http(s) address: staff give product images by URL. The API docs page (Swagger UI)
# adds only what it needs (shopcart/api.py); the generated product SVGs send a stricter policy of their own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "http:", "https:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# The shop's own page for a failed CSRF check (a form from before a log-in in another tab, say).
CSRF_FAILURE_VIEW = "shopcart.views.csrf_failure"

ROOT_URLCONF = "shopcart.urls"
WSGI_APPLICATION = "shopcart.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cart.context_processors.cart_summary",
            ],
        },
    },
]

# Django's own tables (users, admin) on PostgreSQL: by default the local stack's server (make services-up,
# POSTGRES_PORT); several hosts in one URL (`postgres://u@h1:p1,h2:p2/db?target_session_attrs=read-write`) reach
# whichever node is the primary. `sqlite:///path` works too, for one process on one machine (README).
POSTGRES_PORT = env.int("POSTGRES_PORT", default=5433)
DATABASES = {"default": env.db("DATABASE_URL", default=f"postgres://shopcart@127.0.0.1:{POSTGRES_PORT}/shopcart")}
# Connections are reused across requests, and checked before the first query of each request, so a
# connection a database restart or failover broke is replaced by the next request without a restart.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A node that accepts no connection is left after this many seconds (libpq's minimum is 2) for the
    # next host of the URL, or a 503; libpq's default waits for as long as TCP does.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# ModelBackend, with the session's user read through the auth cache (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.CachedUserBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Redis is the cache and the session store, shared by all replicas.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# With Sentinel (automatic failover): the sentinels' addresses and the name they monitor the primary by.
# REDIS_URL's database number and credentials still apply; its host is replaced by the current primary.
REDIS_SENTINELS = env.list("REDIS_SENTINELS", default=[])
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="shopcart")
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)


def redis_cache(url: str, *, key_prefix: str) -> dict[str, object]:
    """The one cache configuration; sessions, throttling, offers and token revocations all use it through
    Django's cache or `get_redis_connection("default")`, so Sentinel applies to every Redis use."""
    options: dict[str, object] = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        # Fail fast when Redis is down, so the request gets a 503 instead of hanging.
        "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
        "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
    }
    location: str | list[str] = url
    if REDIS_SENTINELS:
        parsed = urlsplit(url)
        credentials = parsed.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{REDIS_SENTINEL_MASTER}" if credentials else REDIS_SENTINEL_MASTER
        # One location, the primary: a string would make django-redis read from the replica too, and a
        # read just after a write could miss it (replication is asynchronous).
        location = [urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, ""))]
        options |= {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [(host, int(port)) for host, _, port in (s.rpartition(":") for s in REDIS_SENTINELS)],
            # A sentinel that is down or hung is skipped quickly, so the primary is found within a second.
            "SENTINEL_KWARGS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": key_prefix,
        "OPTIONS": options,
    }


CACHES = {"default": redis_cache(REDIS_URL, key_prefix=env.str("CACHE_KEY_PREFIX", default="shopcart"))}
# Django's cache sessions, except that an unreachable Redis is a 503, not an empty session (shopcart/sessions.py).
SESSION_ENGINE = "shopcart.sessions"
SESSION_CACHE_ALIAS = "default"

ELASTICSEARCH_URL = env.str("ELASTICSEARCH_URL", default="http://127.0.0.1:9200")
ELASTICSEARCH_TIMEOUT = env.float("ELASTICSEARCH_TIMEOUT", default=5.0)
# Index creation, aliases and bulk loads (seed, reindex) wait this long instead.
ELASTICSEARCH_ADMIN_TIMEOUT = env.float("ELASTICSEARCH_ADMIN_TIMEOUT", default=60.0)
# With several addresses: a node that failed (refused, or silent for ELASTICSEARCH_TIMEOUT: hung) gets no
# request for this many seconds, doubling while it keeps failing (at most 4x). The client's default,
# 1 s, sends a request to a hung node every second, and each of those waits out the whole timeout.
ELASTICSEARCH_DEAD_NODE_BACKOFF = env.float("ELASTICSEARCH_DEAD_NODE_BACKOFF", default=15.0)
# Every index name starts with this, so tests (and several shops) can share one cluster.
ELASTICSEARCH_INDEX_PREFIX = env.str("ELASTICSEARCH_INDEX_PREFIX", default="shopcart")
# Replicas of the product and cart indices, as Elasticsearch's `index.auto_expand_replicas` ("0-1": none
# on one node, one as soon as there are two data nodes, so losing any one node loses no acknowledged
# write). Applies to indices created from now on; "false" leaves Elasticsearch's number_of_replicas (1).
ELASTICSEARCH_AUTO_EXPAND_REPLICAS = env.str("ELASTICSEARCH_AUTO_EXPAND_REPLICAS", default="0-1")

NATS_URL = env.str("NATS_URL", default="nats://127.0.0.1:4222")
NATS_URLS = split_urls(NATS_URL)
NATS_TIMEOUT = env.float("NATS_TIMEOUT", default=2.0)
# A server that stops answering (hung, or the network to it gone) is left after
# NATS_PING_INTERVAL x (NATS_MAX_OUTSTANDING_PINGS + 1) seconds at most, for another server of NATS_URL;
# nats-py's defaults (120 s x 2) would keep a client on a hung server for minutes.
NATS_PING_INTERVAL = env.float("NATS_PING_INTERVAL", default=1.0)
NATS_MAX_OUTSTANDING_PINGS = env.int("NATS_MAX_OUTSTANDING_PINGS", default=2)
NATS_RECONNECT_WAIT = env.float("NATS_RECONNECT_WAIT", default=0.5)

# --- accounts ---
# Log-in throttling (accounts/throttling.py, docs/accounts.md). Per account: LOGIN_FAILURE_LIMIT failures
# lock it for LOGIN_FAILURE_WINDOW seconds, doubled with each further failure up to LOGIN_LOCKOUT_MAX
# (also the quiet spell after which failures are forgotten). The same applies to the current password
# of the password-change form.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=60)
LOGIN_LOCKOUT_MAX = env.int("LOGIN_LOCKOUT_MAX", default=3600)
# Per client address, far higher: a shared address (office NAT, mobile carrier) holds many shoppers.
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=100)
LOGIN_ADDRESS_FAILURE_WINDOW = env.int("LOGIN_ADDRESS_FAILURE_WINDOW", default=3600)
# An address an account logged in from this recently is familiar: others' failures do not lock it out there.
LOGIN_FAMILIAR_DAYS = env.int("LOGIN_FAMILIAR_DAYS", default=30)
# Only behind a proxy that sets it: otherwise a client could pick its own throttling address.
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)
API_TOKEN_TTL = env.int("API_TOKEN_TTL", default=24 * 60 * 60)
# Users created by `manage.py seed`; an empty password is generated and printed once.
DEMO_USER_EMAIL = env.str("DEMO_USER_EMAIL", default="demo@shopcart.local")
DEMO_USER_PASSWORD = env.str("DEMO_USER_PASSWORD", default="")
STAFF_USER_EMAIL = env.str("STAFF_USER_EMAIL", default="admin@shopcart.local")
STAFF_USER_PASSWORD = env.str("STAFF_USER_PASSWORD", default="")

# Password-reset mails: requests allowed per email address and per client address within the window
# (seconds); the page answers 429 beyond them. A reset link stays valid PASSWORD_RESET_TIMEOUT seconds.
PASSWORD_RESET_EMAIL_LIMIT = env.int("PASSWORD_RESET_EMAIL_LIMIT", default=3)
PASSWORD_RESET_ADDRESS_LIMIT = env.int("PASSWORD_RESET_ADDRESS_LIMIT", default=20)
PASSWORD_RESET_WINDOW = env.int("PASSWORD_RESET_WINDOW", default=60 * 60)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
# A change of email address (the account page, PATCH-like API) is confirmed by a link mailed to the new
# address, valid EMAIL_CHANGE_TIMEOUT seconds; at most EMAIL_CHANGE_LIMIT such mails per account per hour.
EMAIL_CHANGE_TIMEOUT = env.int("EMAIL_CHANGE_TIMEOUT", default=24 * 60 * 60)
EMAIL_CHANGE_LIMIT = env.int("EMAIL_CHANGE_LIMIT", default=5)

# --- email: a real SMTP server; locally the stack's mail catcher (devstack/mailcatcher.py) ---
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shopcart <no-reply@shopcart.local>")

# --- cart ---
CART_MAX_QUANTITY_PER_LINE = env.int("CART_MAX_QUANTITY_PER_LINE", default=99)
# Optimistic-concurrency attempts per cart change before the client gets a 409 it may retry, with
# full-jitter exponential backoff between them: uniform(0, min(cap, base * 2**attempt)) seconds.
CART_WRITE_RETRIES = env.int("CART_WRITE_RETRIES", default=10)
CART_RETRY_BACKOFF_BASE = env.float("CART_RETRY_BACKOFF_BASE", default=0.005)
CART_RETRY_BACKOFF_CAP = env.float("CART_RETRY_BACKOFF_CAP", default=0.1)
# Currency of an empty cart (the first line fixes a cart's currency).
CART_DEFAULT_CURRENCY = env.str("CART_DEFAULT_CURRENCY", default="USD")
CART_SUMMARY_CACHE_TTL = env.int("CART_SUMMARY_CACHE_TTL", default=300)
# The mini-cart count in every page header: a slow Elasticsearch must not slow every page.
CART_COUNT_TIMEOUT = env.float("CART_COUNT_TIMEOUT", default=0.5)
# JetStream stream of cart events; subjects are `<prefix>.<event>`.
CART_EVENTS_STREAM = env.str("CART_EVENTS_STREAM", default="CART")
CART_EVENTS_SUBJECT_PREFIX = env.str("CART_EVENTS_SUBJECT_PREFIX", default="cart")
# JetStream forgets a message id after this long (the stream's duplicate window, when the app creates it);
# inside it a re-sent event is dropped by the server.
CART_EVENTS_DUPLICATE_WINDOW = 600
# Copies of the stream when the app creates it (an existing stream is never changed): by default one
# per NATS_URL address, at most 3, so a 3-server cluster keeps every acknowledged event through the
# loss of one server. JetStream allows 1 to 5, and at most the cluster's size.
CART_EVENTS_STREAM_REPLICAS = max(1, min(5, env.int("CART_EVENTS_STREAM_REPLICAS", default=min(3, len(NATS_URLS)))))
# A change's events are written into its cart document with it and published at once (cart.events). The
# relay leaves events, and carts written, younger than this to their requests: it publishes older ones no
# request could, and removes published events from carts idle for that long.
CART_RELAY_GRACE_SECONDS = env.float("CART_RELAY_GRACE_SECONDS", default=3.0)
# Each web process runs a candidate thread for the one relay lease (cart.relay); every
# CART_RELAY_INTERVAL seconds it takes or extends the lease, and the holder runs a relay round. A holder
# that dies is replaced within CART_RELAY_LEASE_SECONDS.
CART_RELAY_THREAD = env.bool("CART_RELAY_THREAD", default=True)
CART_RELAY_INTERVAL = env.float("CART_RELAY_INTERVAL", default=1.0)
CART_RELAY_LEASE_SECONDS = env.float("CART_RELAY_LEASE_SECONDS", default=5.0)
# A published event stays in its cart until the cart's next write leaves it out, or until the relay removes
# it once the cart has been idle this long: each removal is a write, so not after every change of a cart
# that is being shopped, and well within JetStream's 10-minute duplicate window (a lost "published" mark
# makes the relay send an event again; inside the window the stream drops it).
CART_RELAY_IDLE_SECONDS = env.float("CART_RELAY_IDLE_SECONDS", default=60.0)
# How long a cart's last known version (its document and concurrency token, where a write starts: cart.versions)
# is kept in Redis after its last read or write.
CART_VERSION_CACHE_TTL = env.int("CART_VERSION_CACHE_TTL", default=3600)
# `manage.py cart_cleanup` deletes anonymous carts unchanged for this many days. Keep it above the
# session lifetime (SESSION_COOKIE_AGE, 14 days): a guest's cart is reachable only through their session.
CART_GUEST_CART_RETENTION_DAYS = env.int("CART_GUEST_CART_RETENTION_DAYS", default=30)
# Idempotency keys (API header, page form token) a cart remembers: the last N, for at most TTL seconds.
CART_IDEMPOTENCY_KEYS_KEPT = env.int("CART_IDEMPOTENCY_KEYS_KEPT", default=50)
CART_IDEMPOTENCY_KEY_TTL = env.int("CART_IDEMPOTENCY_KEY_TTL", default=86400)
# Reads (with backoff, ~3 s in all for 5) that try to learn whether a write whose answer was lost was applied.
CART_OUTCOME_READ_ATTEMPTS = env.int("CART_OUTCOME_READ_ATTEMPTS", default=5)
# TEST ONLY, never in production: `kill` makes the worker SIGKILL itself right after Elasticsearch
# acknowledged a cart write, before anything else (publishing its events, answering), so the cluster and
# crash tests can prove that no applied change loses its event. Empty (the default): no fault.
CART_FAULT_AFTER_WRITE = env.str("CART_FAULT_AFTER_WRITE", default="")
# TEST ONLY, never in production: `pause` stops the relay leader dead (SIGSTOP) in the middle of its batch,
# with events published and neither recorded nor removed, for the test that kills it there.
CART_FAULT_RELAY = env.str("CART_FAULT_RELAY", default="")
# The names of the test-only fault hooks: production settings refuse to start with any of them set.
FAULT_HOOK_SETTINGS = ("CART_FAULT_AFTER_WRITE", "CART_FAULT_RELAY")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the app directories when collectstatic has not run (dev, tests).
WHITENOISE_USE_FINDERS = True

# Which replica answered; X-Served-By on every response. Defaults to host:pid.
SERVED_BY = env.str("SERVED_BY", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "elastic_transport": {"level": "WARNING"},
        "nats": {"level": "WARNING"},
    },
}
