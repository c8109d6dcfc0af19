"""Shared by the catalog-facing test modules: the shipped catalog seeded under a prefix of a module's
own, and product input with test defaults."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from catalog.services import ProductInput


@contextmanager
def seeded_catalog(django_db_blocker: Any, tag: str) -> Iterator[str]:
    """`manage.py seed` into indices of their own (prefix `<run prefix>-<tag><random>`), yielding that
    prefix. The seed adds users too, so callers depend on `django_db_setup` (a module run on its own)."""
    prefix = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-{tag}{uuid.uuid4().hex[:6]}"
    with override_settings(ELASTICSEARCH_INDEX_PREFIX=prefix), django_db_blocker.unblock():
        call_command("seed", stdout=None)
        # The seed's demo users would outlive every test's transaction; these tests do not need them.
        get_user_model().objects.filter(email__in=[settings.DEMO_USER_EMAIL, settings.STAFF_USER_EMAIL]).delete()
        yield prefix


@contextmanager
def using_catalog(prefix: str) -> Iterator[str]:
    with override_settings(ELASTICSEARCH_INDEX_PREFIX=prefix):
        yield prefix


def product_input(*, sku_prefix: str, **fields: Any) -> ProductInput:
    """A valid ProductInput with a unique SKU; `fields` override the defaults."""
    values: dict[str, Any] = {
        "sku": f"{sku_prefix}-{uuid.uuid4().hex[:8]}",
        "name": "Test Teapot",
        "description": "A teapot for tests.",
        "category": "Kitchen",
        "price": Decimal("12.50"),
        "currency": "USD",
        "stock": 7,
    }
    values.update(fields)
    return ProductInput(**values)


def input_of(product: Any, **changes: Any) -> ProductInput:
    """A product's editable fields as the services take them, with `changes` (an edit of it)."""
    fields = {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "price": product.price,
        "currency": product.currency,
        "stock": product.stock,
        "image_url": product.image_url,
        "active": product.active,
    }
    return ProductInput(**{**fields, **changes})
