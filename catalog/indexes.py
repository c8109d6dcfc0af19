"""Physical product indices behind the `<prefix>-products` alias."""

from __future__ import annotations

import time

from catalog import cache as catalog_cache
from catalog.documents import ProductDocument, products_alias
from shopcart import es


def _new_physical_name() -> str:
    return f"{products_alias()}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 1_000_000:06d}"


def _create_physical_index() -> str:
    name = _new_physical_name()
    ProductDocument._index.clone(name).settings(**es.replica_settings()).create(using=es.admin_client())
    return name


def physical_indices() -> list[str]:
    client = es.client()
    if not client.indices.exists_alias(name=products_alias()):
        return []
    return sorted(client.indices.get_alias(name=products_alias()))


def ensure_product_index() -> bool:
    """Create a physical index and point the alias at it, unless the alias exists. True if created."""
    if physical_indices():
        return False
    name = _create_physical_index()
    es.admin_client().indices.put_alias(index=name, name=products_alias())
    return True


def recreate_product_index() -> None:
    """Drop every product and start from an empty index (seed --reset)."""
    old = physical_indices()
    name = _create_physical_index()
    _swap_alias(new=name, old=old)
    if old:
        es.admin_client().indices.delete(index=",".join(old))
    catalog_cache.bump()  # every product is gone: nothing cached about them may be served


def _swap_alias(*, new: str, old: list[str]) -> None:
    actions = [{"add": {"index": new, "alias": products_alias()}}]
    actions += [{"remove": {"index": index, "alias": products_alias()}} for index in old]
    es.admin_client().indices.update_aliases(actions=actions)
