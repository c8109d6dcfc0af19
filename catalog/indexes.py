"""Physical product indices behind the `<prefix>-products` alias: creating the first, starting over
(seed --reset), and reindexing into a new one when the mapping changed (seed, thus make run), each
ending with one atomic swap of the alias, so searches never see a missing or half-filled index."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from elasticsearch import ConflictError, NotFoundError
from elasticsearch.helpers import scan, streaming_bulk

from catalog import cache as catalog_cache
from catalog.documents import MAPPING_VERSION, ProductDocument, products_alias
from shopcart import es

logger = logging.getLogger(__name__)

# Writes to the old index while a reindex copies it are copied again after the swap: those whose
# `updated_at` is at most this long before the copy started (clocks of other machines may lag).
CLOCK_SKEW_MARGIN = timedelta(minutes=2)


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


def mapping_version() -> int | None:
    """The mapping version of the index behind the alias (0 for one from before versions; None: no index)."""
    indices = physical_indices()
    if not indices:
        return None
    mappings = es.client().indices.get_mapping(index=",".join(indices))
    return min(int((entry["mappings"].get("_meta") or {}).get("mapping_version", 0)) for entry in mappings.values())


def upgrade_product_index() -> int | None:
    """Reindex the products into an index with the current mapping if the alias' index has an older one
    (the number of products copied), else None. Nothing to do without an index."""
    version = mapping_version()
    if version is None or version >= MAPPING_VERSION:
        return None
    return reindex_products()


def _copy(documents: Iterator[dict[str, Any]], *, into: str) -> int:
    """Index search hits (`_id`, `_source`) into the physical index `into`, as they are."""
    actions = ({"_index": into, "_id": hit["_id"], "_source": hit["_source"]} for hit in documents)
    copied = 0
    for ok, item in streaming_bulk(es.admin_client(), actions, chunk_size=2000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"reindexing a product failed: {item}")
        copied += 1
    return copied


def reindex_products() -> int:
    """Copy every product into a new physical index with the current mapping, swap the alias to it in one
    step, and delete the old index; returns how many were copied. Elasticsearch's `_reindex` is in a
    module the local server lacks (docs/adr/0001), so this is a scan and a bulk load.

    Searches and writes go on meanwhile. A write that reached the old index during the copy (a staff
    edit, a deactivation) is copied again right after the swap, unless the new index already has a later
    version of that product (written after the swap)."""
    old = physical_indices()
    client = es.admin_client()
    started = timezone.now()
    new = _create_physical_index()
    copied = _copy(scan(client, index=",".join(old), query={"query": {"match_all": {}}}), into=new)
    client.indices.refresh(index=new)
    _swap_alias(new=new, old=old)
    client.indices.refresh(index=",".join(old))
    changed = {"range": {"updated_at": {"gte": (started - CLOCK_SKEW_MARGIN).isoformat()}}}
    for hit in scan(client, index=",".join(old), query={"query": changed}):
        _copy_if_newer(hit, into=new)
    client.indices.delete(index=",".join(old))
    catalog_cache.bump()  # the same products, but a search may now find others: no cached listing stays
    logger.info("reindexed %d products from %s into %s", copied, ", ".join(old), new)
    return copied


def _updated_at(source: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(source.get("updated_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)  # no usable date: older than any


def _copy_if_newer(hit: dict[str, Any], *, into: str) -> None:
    """One product changed in the old index during the copy: written into the new index at the version
    read there, unless that version is as new (then a write after the swap has it already)."""
    client = es.admin_client()
    try:
        current = client.get(index=into, id=hit["_id"])
    except NotFoundError:
        current = None
    if current is not None and _updated_at(current["_source"]) >= _updated_at(hit["_source"]):
        return
    condition: dict[str, Any] = (
        {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
        if current is not None
        else {"op_type": "create"}
    )
    with contextlib.suppress(ConflictError):  # written meanwhile through the alias: that write is the newer one
        client.index(index=into, id=hit["_id"], document=hit["_source"], refresh="wait_for", **condition)
