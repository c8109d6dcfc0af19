"""The catalog tests' shared fixtures: the shipped catalog seeded once per test module, under an index
prefix of that module's own, and used by each test that asks for `catalog`; or an empty catalog of the
test's own (`empty_catalog`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

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


@pytest.fixture
def empty_catalog() -> Iterator[str]:
    prefix = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-empty{uuid.uuid4().hex[:6]}"
    with override_settings(ELASTICSEARCH_INDEX_PREFIX=prefix):
        yield prefix
