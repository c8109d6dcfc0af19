"""Suite-wide fixtures. The tests use the real local services; if one is missing the run stops at
once and says how to start it, instead of skipping anything. Only a run of nothing but the unit layer
(tests/unit/, `make test-unit`: pure logic, marked `unit`) or of the compose stacks (`make
test-compose`: they start their own, in containers) needs no services.
Helpers and fixtures shared by the test modules live in tests/support/."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

from shopcart.service_urls import split_urls

# The shared fixtures (tests/support/): registered here, so no test module imports a fixture by name.
pytest_plugins = ["tests.support.accounts", "tests.support.cart", "tests.support.compose", "tests.support.database"]

START_HINT = "Start the local stack with: make services-up   (or run the whole suite with: make test)"


def _tcp_reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _elasticsearch_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_cluster/health", timeout=5) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def _postgres_problem() -> str | None:
    """Why the suite cannot use its database server, or None."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        return (
            f"PostgreSQL (DATABASE_URL names {database['ENGINE']}; the suite runs on PostgreSQL, the database "
            "production uses: unset DATABASE_URL for the local stack's server)"
        )
    from tests.support.database import admin_connection

    try:
        admin_connection().close()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means it is not there
        return f"PostgreSQL at {database['HOST']}:{database['PORT']} ({type(exc).__name__})"
    return None


def _mailcatcher_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/healthz", timeout=5) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


UNIT_DIR = Path(__file__).resolve().parent / "unit"


def _is_unit(item: pytest.Item) -> bool:
    return Path(str(item.path)).is_relative_to(UNIT_DIR)


def _needs_services(session: pytest.Session) -> bool:
    """False only when every selected test is a unit test (tests/unit/, `make test-unit`) or runs the
    containers, which bring their own services (`make test-compose`)."""
    return not all(_is_unit(item) or item.get_closest_marker("compose") for item in session.items)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_unit(item):
            item.add_marker(pytest.mark.unit)


def pytest_collection_finish(session: pytest.Session) -> None:
    """After collection, so that a run of unit tests only needs no services; any other test does."""
    if _needs_services(session):
        _require_services()


def _require_services() -> None:
    missing = []
    if problem := _postgres_problem():
        missing.append(problem)
    # With several addresses, the first must answer (the suite runs on one local node of each).
    if not _elasticsearch_up(split_urls(settings.ELASTICSEARCH_URL)[0]):
        missing.append(f"Elasticsearch at {settings.ELASTICSEARCH_URL}")
    if not _tcp_reachable(settings.REDIS_URL, 6379):
        missing.append(f"Redis at {settings.REDIS_URL}")
    if not _tcp_reachable(split_urls(settings.NATS_URL)[0], 4222):
        missing.append(f"NATS at {settings.NATS_URL}")
    # The password-reset tests send real mail through SMTP and read it back from the catcher's page.
    smtp = f"smtp://{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    if not _tcp_reachable(smtp, 25) or not _mailcatcher_up(settings.MAILCATCHER_URL):
        missing.append(f"the mail catcher at {smtp} and {settings.MAILCATCHER_URL}")
    if missing:
        pytest.exit(f"Required services are not reachable: {', '.join(missing)}.\n{START_HINT}", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _clean_test_data(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each run has its own index prefix, cache prefix and databases; remove them afterwards."""
    from django.core.cache import cache

    from shopcart import es
    from tests.support.database import drop_run_databases

    yield
    if not _needs_services(request.session):
        return  # unit tests only: they wrote nothing, and the services may not be running
    # Elasticsearch 8 refuses wildcard deletes (action.destructive_requires_name), so name each index.
    names = list(es.client().indices.get(index=f"{settings.ELASTICSEARCH_INDEX_PREFIX}-*", expand_wildcards="all"))
    # A few dozen at a time: the names go in the URL, whose line Elasticsearch refuses past 4 KiB.
    for start in range(0, len(names), 30):
        es.client().indices.delete(index=",".join(names[start : start + 30]))
    cache.delete_pattern("*")
    drop_run_databases()
