"""The catalog tests' shared fixtures: the shipped catalog seeded once per test module, under an index
prefix of that module's own, and used by each test that asks for `catalog`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import catalog as catalog_support


@pytest.fixture(scope="module")
def seeded_catalog(request: pytest.FixtureRequest, django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    tag = request.module.__name__.rpartition(".")[2].removeprefix("test_")[:8]
    with catalog_support.seeded_catalog(django_db_blocker, tag) as prefix:
        yield prefix


@pytest.fixture
def catalog(seeded_catalog: str) -> Iterator[str]:
    with catalog_support.using_catalog(seeded_catalog) as prefix:
        yield prefix
