"""Databases of a test's own, for the processes a test starts (a gunicorn, replicas, `manage.py`). pytest-django's
test database only holds what this process's test transactions wrote, so each such process gets a database of
its own on the same PostgreSQL server(s): a copy of one template migrated once per run (CREATE DATABASE ...
TEMPLATE takes ~0.1 s, a migrate several seconds). Every database of the run is named `test_<run id>_...` and
dropped at the end of the run (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from tests.support.gunicorn import manage

_template_lock = threading.Lock()
_templates: set[str] = set()


def run_prefix() -> str:
    return f"test_{settings.TEST_RUN_ID}_"


def _default_server() -> dict[str, Any]:
    return settings.DATABASES["default"]


def database_url(name: str, *, server: dict[str, Any] | None = None) -> str:
    """DATABASE_URL of database `name` on `server` (a Django database setting; default: the suite's own),
    with its options (several hosts and target_session_attrs included)."""
    config = server or _default_server()
    credentials = quote(config["USER"], safe="")
    if config.get("PASSWORD"):
        credentials += ":" + quote(config["PASSWORD"], safe="")
    hosts = str(config["HOST"]).split(",")
    ports = str(config["PORT"]).split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    netloc = ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=True))
    query = urlencode(config.get("OPTIONS") or {})
    return f"postgres://{credentials}@{netloc}/{name}" + (f"?{query}" if query else "")


def admin_connection(server: dict[str, Any] | None = None) -> psycopg.Connection:
    """A connection to the server's `postgres` database (on the primary), for CREATE and DROP DATABASE."""
    config = server or _default_server()
    return psycopg.connect(
        host=config["HOST"],
        port=str(config["PORT"]),
        user=config["USER"],
        password=config.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
        **(config.get("OPTIONS") or {}),
    )


def create_database(name: str, *, template: str | None = None, server: dict[str, Any] | None = None) -> str:
    """Creates database `name` (empty, or a copy of `template`); returns its DATABASE_URL."""
    with admin_connection(server) as connection:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        connection.execute(statement)
    return database_url(name, server=server)


def drop_database(name: str, *, server: dict[str, Any] | None = None) -> None:
    with admin_connection(server) as connection:
        # FORCE: a process the test killed may have left its connections behind for a moment.
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _env_with(url: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "shopcart.settings.test", "DATABASE_URL": url}


def _template() -> str:
    """The run's migrated template, made on first use."""
    name = f"{run_prefix()}template"
    with _template_lock:
        if name not in _templates:
            url = create_database(name)
            manage("migrate", "--noinput", "-v", "0", env=_env_with(url))
            _templates.add(name)
    return name


@contextlib.contextmanager
def own_database(label: str, *, server: dict[str, Any] | None = None) -> Iterator[str]:
    """A migrated database of the caller's own, dropped afterwards: its DATABASE_URL. On the suite's server it
    is a copy of the run's template; on another `server` (the cluster's) it is migrated in place."""
    name = f"{run_prefix()}{label}_{uuid.uuid4().hex[:6]}"
    if server is None:
        url = create_database(name, template=_template())
    else:
        url = create_database(name, server=server)
        manage("migrate", "--noinput", "-v", "0", env=_env_with(url))
    try:
        yield url
    finally:
        drop_database(name, server=server)


def drop_run_databases(server: dict[str, Any] | None = None) -> None:
    """Every database of this run (tests/conftest.py, at the end of the run)."""
    with admin_connection(server) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (run_prefix(),)
            ).fetchall()
        ]
    for name in names:
        drop_database(name, server=server)


@pytest.fixture
def own_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """DATABASE_URL of a migrated database of the test's own (for a gunicorn or manage.py it starts)."""
    with own_database(request.node.name.split("[")[0][:30]) as url:
        yield url
