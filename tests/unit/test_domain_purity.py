"""The cart's domain modules decide and never do I/O: imported alone, in a fresh interpreter, they load
no client of Elasticsearch, Redis or NATS, no network module, no Django, and nothing of the project but
each other (cart.domain once imported catalog.selectors for a type, which loaded the cache and the
Elasticsearch client)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT

DOMAIN_MODULES = ("cart.domain", "cart.errors", "shopcart.errors", "shopcart.money")
# Whatever talks to a service, or could: the clients, the sockets under them, and Django (settings, ORM).
IO_PACKAGES = (
    "elasticsearch",
    "elastic_transport",
    "elasticsearch_dsl",
    "redis",
    "django_redis",
    "nats",
    "urllib3",
    "socket",
    "ssl",
    "http",
    "asyncio",
    "django",
    "catalog",
    "accounts",
)


def loaded_by(modules: tuple[str, ...]) -> set[str]:
    code = f"import json, sys; import {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(json.loads(output))


def test_the_domain_modules_import_nothing_that_does_io() -> None:
    loaded = loaded_by(DOMAIN_MODULES)
    io = sorted(name for name in loaded if name.split(".")[0] in IO_PACKAGES)
    assert io == [], f"the domain modules load modules that do I/O: {io}"
    project = sorted(name for name in loaded if name.split(".")[0] in ("cart", "shopcart", "catalog", "accounts"))
    assert set(project) <= {"cart", "shopcart", *DOMAIN_MODULES}, project


def test_the_check_sees_io() -> None:
    loaded = loaded_by(("cart.versions",))  # a module that does I/O (Redis), for contrast
    assert {"django_redis", "elasticsearch", "socket"} <= loaded
