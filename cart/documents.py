"""The cart index: one document per owner, addressed through the alias `<prefix>-carts`.

The document id is the cart id: `user-<user id>` for a signed-in user, `anon-<random id>` for an
anonymous session (the random id lives in the session, see cart.owners). Reads are real-time GETs by
that id and writes are conditional on a version's `_seq_no`/`_primary_term` (cart.services), so the
mapping only serves what operators and the relay look for: the owner, the kind, the dates and whether
events wait (`has_pending_events`). Everything else (the lines above all) is stored, not indexed: a write
re-indexes one small document instead of a nested document per line with analysed text (a 200-line cart
cost Elasticsearch 3.9x a 1-line cart's write nested, 1.5x stored).

A mapping change gets a new physical index (`<alias>-v<MAPPING_VERSION>`), filled by
`manage.py cart_reindex` and swapped in under the alias (`migrate_cart_index`, docs/operations.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from elasticsearch import BadRequestError, NotFoundError
from elasticsearch.helpers import scan, streaming_bulk

from cart.domain import Cart, Line
from shopcart import es

logger = logging.getLogger(__name__)

CARTS = "carts"
# Bumped with every change of MAPPING that an existing index cannot take by adding fields; its physical
# index is `<alias>-v<version>`. A fixed name (not a timestamp) makes creating it idempotent and race-free
# across replicas: the second creator gets "already exists" and both point the alias at it.
MAPPING_VERSION = 2
_STORED = {"type": "object", "enabled": False}  # kept in _source, never indexed
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"version": MAPPING_VERSION},
    "properties": {
        # "user" or "anonymous"; user_id is set for user carts only.
        "kind": {"type": "keyword"},
        "user_id": {"type": "keyword"},
        "currency": {"type": "keyword"},
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
        # True while pending_events is not empty: what the relay and operators search for.
        "has_pending_events": {"type": "boolean"},
        # [{productId, sku, name, unit_price_cents, currency, quantity, added_at}]: read by id only.
        "lines": _STORED,
        # An anonymous cart being merged at login holds the claimed lines here until the merge finishes
        # (cart.merge).
        "pending_merge": _STORED,
        # Ids of merge claims already applied to this (user) cart, so a retried merge never adds twice.
        "applied_merges": _STORED,
        # The events of acknowledged changes, written in the same write as the change (the cart is its own
        # outbox, cart.events) and left out again by a later write or the relay once published.
        "pending_events": _STORED,
        # Recent write operations ({id, at, key?, fp?}): how a write whose answer was lost learns whether it
        # was applied, and how an Idempotency-Key is recognised (cart.write_engine).
        "ops": _STORED,
        # The newest `at` of an operation dropped from `ops` by the count cap (not by age): an operation
        # started before it may have been dropped, so its absence proves nothing.
        "ops_dropped_until": _STORED,
    },
}


def carts_alias() -> str:
    return es.index_name(CARTS)


def physical_name(version: int = MAPPING_VERSION) -> str:
    return f"{carts_alias()}-v{version}"


def _index_settings() -> dict[str, Any]:
    return {"number_of_shards": 1, **es.replica_settings()}


_ensured: set[str] = set()


def _create(name: str) -> bool:
    """Create a physical cart index with the current mapping; False if it exists already."""
    try:
        es.admin_client().indices.create(index=name, mappings=MAPPING, settings=_index_settings())
    except BadRequestError as exc:
        if "resource_already_exists_exception" not in str(exc):
            raise
        return False
    return True


def mapping_version(index: str) -> int:
    """The MAPPING_VERSION an existing physical index was made with (1: before versions were recorded)."""
    mappings = es.admin_client().indices.get_mapping(index=index)[index]["mappings"]
    return int((mappings.get("_meta") or {}).get("version", 1))


def alias_targets() -> list[str]:
    try:
        return sorted(es.admin_client().indices.get_alias(name=carts_alias()))
    except NotFoundError:
        return []


def ensure_cart_index() -> bool:
    """Create the physical cart index and its alias unless they exist. True if this call created them.

    Writes never target a missing alias: Elasticsearch would auto-create a concrete index named like
    the alias, with a guessed mapping, and the alias could then never be added.
    """
    alias = carts_alias()
    if alias in _ensured:
        return False
    client, admin = es.client(), es.admin_client()
    created = False
    if not client.indices.exists_alias(name=alias):
        physical = physical_name()
        created = _create(physical)
        admin.indices.put_alias(index=physical, name=alias)
        # A process that lost the create race must not write before the primary shard is active
        # (Elasticsearch would answer 503); waiting for yellow covers winner and losers alike.
        admin.cluster.health(index=alias, wait_for_status="yellow", timeout="30s")
    if not created:
        for index in alias_targets():
            version = mapping_version(index)
            if version == MAPPING_VERSION:
                # The mapping is strict: an index of this version made by older code gets the newer fields
                # (adding fields changes nothing else; sending the existing ones again is a no-op).
                admin.indices.put_mapping(index=index, properties=MAPPING["properties"])
            else:
                # The documents are the same; only how they are indexed differs. It works as it is until
                # an operator moves it (docs/operations.md).
                logger.warning(
                    "cart index %s has mapping version %d, not %d: run `manage.py cart_reindex`",
                    index,
                    version,
                    MAPPING_VERSION,
                )
    _ensured.add(alias)
    return created


# -- moving to a new mapping ------------------------------------------------------------------------------


def migrate_cart_index(*, log: Any = logger.info) -> str:
    """Move the carts to a physical index with the current MAPPING and swap the alias to it. Returns what
    was done. Cart writes are refused (a 503 that says nothing was changed) while the documents are copied;
    reads go on. The old index stays, write-blocked: a write conditional on a version read from it (a
    last known version in Redis, cart.versions) names that index, is refused there and re-reads the cart
    through the alias. Delete it with `drop_old_cart_index` once no such version can be left (after
    CART_VERSION_CACHE_TTL)."""
    admin = es.admin_client()
    targets = alias_targets()
    if not targets:
        ensure_cart_index()
        return f"created {physical_name()} (there was no cart index)"
    if len(targets) != 1:
        raise RuntimeError(f"the alias {carts_alias()} points at {targets}; expected one index")
    [old] = targets
    if mapping_version(old) == MAPPING_VERSION:
        return f"{old} has the current mapping (version {MAPPING_VERSION}); nothing to do"
    new = physical_name()
    if new == old:
        raise RuntimeError(f"{old} would be replaced by itself")
    if admin.indices.exists(index=new):  # a migration interrupted before its swap: the old index is the truth
        admin.indices.delete(index=new)
    _create(new)
    admin.cluster.health(index=new, wait_for_status="yellow", timeout="30s")
    admin.indices.put_settings(index=old, settings={"index.blocks.write": True})
    try:
        admin.indices.refresh(index=old)
        copied = _copy(old, new)
        admin.indices.refresh(index=new)
        counted = int(admin.count(index=new)["count"])
        expected = int(admin.count(index=old)["count"])
        if counted != expected:
            raise RuntimeError(f"copied {counted} carts into {new}, but {old} holds {expected}")
        admin.indices.put_mapping(index=new, meta={"version": MAPPING_VERSION, "migrated_from": old, "at": time.time()})
        admin.indices.update_aliases(
            actions=[
                {"remove": {"index": old, "alias": carts_alias()}},
                {"add": {"index": new, "alias": carts_alias()}},
            ]
        )
    except Exception:
        admin.indices.put_settings(index=old, settings={"index.blocks.write": None})
        raise
    _ensured.discard(carts_alias())
    log(f"copied {copied} carts from {old} into {new}; the alias {carts_alias()} now points at {new}")
    return f"moved {copied} carts to {new}; {old} is kept, write-blocked: drop it after CART_VERSION_CACHE_TTL"


def _copy(old: str, new: str) -> int:
    admin = es.admin_client()

    def actions() -> Iterator[dict[str, Any]]:
        for hit in scan(admin, index=old, query={"query": {"match_all": {}}}, size=500):
            yield {"_op_type": "index", "_index": new, "_id": hit["_id"], "_source": hit["_source"]}

    copied = 0
    for ok, item in streaming_bulk(admin, actions(), chunk_size=500, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"copying a cart failed: {item}")
        copied += 1
    return copied


def drop_old_cart_index(*, force: bool = False) -> list[str]:
    """Delete the physical cart indices the alias no longer points at (left write-blocked by a migration),
    once CART_VERSION_CACHE_TTL has passed since the migration (or at once with `force`). Returns them."""
    current = alias_targets()
    if not current:
        return []
    meta = es.admin_client().indices.get_mapping(index=current[0])[current[0]]["mappings"].get("_meta") or {}
    waited = time.time() - float(meta.get("at", 0))
    if not force and waited < settings.CART_VERSION_CACHE_TTL:
        raise RuntimeError(
            f"the carts moved {waited:.0f}s ago: versions read from the old index may still be cached for "
            f"{settings.CART_VERSION_CACHE_TTL - waited:.0f}s (CART_VERSION_CACHE_TTL); use --force to drop it now"
        )
    prefix = f"{carts_alias()}-v"
    old = [
        name
        for name in es.admin_client().indices.get(index=f"{prefix}*", expand_wildcards="all")
        if name not in current and name.startswith(prefix)
    ]
    if old:
        es.admin_client().indices.delete(index=",".join(old))
    return sorted(old)


# -- documents as carts -----------------------------------------------------------------------------------


def cart_from_document(cart_id: str, source: dict[str, Any], *, seq_no: int, primary_term: int, index: str) -> Cart:
    """The cart a stored version holds (from a real-time GET, a write, or its last known version)."""
    return Cart(
        id=cart_id,
        lines=tuple(Line.from_source(line) for line in source.get("lines") or []),
        currency=source.get("currency") or settings.CART_DEFAULT_CURRENCY,
        seq_no=seq_no,
        primary_term=primary_term,
        source=source,
        index=index,
    )


def missing_cart(cart_id: str) -> Cart:
    """A cart never written (or deleted): empty, with no version."""
    return Cart(id=cart_id, lines=(), currency=settings.CART_DEFAULT_CURRENCY, seq_no=None, primary_term=None)
