"""The benchmark's configuration: the production settings on plain HTTP over loopback, with a database,
index prefixes, cache keys, NATS stream and ports of its own, so a run never touches the
developer's shop, the test suites or another engineer's stack (fault tests, scale-out tests)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
LUA_DIR = BENCH_DIR / "lua"
DEVSTACK_DIR = ROOT / ".devstack"
# BENCH_NAMESPACE (optional, e.g. "bench-perf"): another name for everything a run owns (folders, database,
# index prefixes, cache keys, stream, subjects) and BENCH_PORT another nginx port (replicas from +101), so
# two people can prepare and profile at once on one shared stack without resetting each other's state.
NAMESPACE = os.environ.get("BENCH_NAMESPACE", "bench")
WORK_DIR = DEVSTACK_DIR / NAMESPACE  # generated wrk data, logs of the run
REPLICAS_DIR = DEVSTACK_DIR / f"{NAMESPACE}-replicas"
# A database of its own on the local stack's PostgreSQL (make services-up), made anew by every run.
DB_NAME = NAMESPACE.replace("-", "_")
POSTGRES_PORT = int(os.environ.get("POSTGRES_PORT", "5433"))
DATABASE_URL = f"postgres://shopcart@127.0.0.1:{POSTGRES_PORT}/{DB_NAME}"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"

HOST = "127.0.0.1"
# Clear of `make run` (8000, 8101-), the scale-out tests (18000-18103) and the fault stack (19200, 16379...).
PORT = int(os.environ.get("BENCH_PORT", "28000"))
REPLICA_BASE_PORT = PORT + 100
REPLICAS = 3

# Two catalogs: the shop the HTTP scenarios run against (100 000 products), and a small one that only
# the search-latency comparison uses. Both are recreated (and timed) by every run.
PREFIX_LARGE = f"{NAMESPACE}-100k"
PREFIX_SMALL = f"{NAMESPACE}-1k"
LARGE_CATALOG = 100_000
SMALL_CATALOG = 1_000
CACHE_KEY_PREFIX = NAMESPACE
EVENTS_STREAM = NAMESPACE.upper().replace("-", "_") + "_CART"
EVENTS_SUBJECT_PREFIX = f"{NAMESPACE}.cart"

# Fixed, long and obviously not a real deployment's: tokens issued by the prepare step must verify on
# every replica, and check --deploy wants 50+ characters.
SECRET_KEY = "bench-only-not-a-deployment-secret-7f3c1a9e5b2d4c6e8a0b1c3d5e7f9a2b4c6d8e0f1a3b5c7d"  # noqa: S105


def app_env(*, prefix: str = PREFIX_LARGE) -> dict[str, str]:
    """The environment of every app process of a run (replicas, manage.py, in-process measurements)."""
    env = dict(os.environ)
    # A developer's .env must not leak into the measured configuration (read_env does not overwrite).
    env.update(
        DJANGO_SETTINGS_MODULE="shopcart.settings.production",
        DEBUG="false",
        SECRET_KEY=SECRET_KEY,
        # Plain HTTP on loopback: no redirect to HTTPS, cookies usable without TLS.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=DATABASE_URL,
        ELASTICSEARCH_INDEX_PREFIX=prefix,
        CACHE_KEY_PREFIX=CACHE_KEY_PREFIX,
        CART_EVENTS_STREAM=EVENTS_STREAM,
        CART_EVENTS_SUBJECT_PREFIX=EVENTS_SUBJECT_PREFIX,
        PYTHONUNBUFFERED="1",
    )
    return env


def replicas_env(*, prefix: str = PREFIX_LARGE) -> dict[str, str]:
    """app_env plus where devstack/replicas.sh puts this set."""
    env = app_env(prefix=prefix)
    env.update(
        HOST=HOST,
        PORT=str(PORT),
        REPLICA_BASE_PORT=str(REPLICA_BASE_PORT),
        REPLICAS_DIR=str(REPLICAS_DIR),
    )
    return env
