"""Clean-up of carts nobody can reach any more (`manage.py cart_cleanup`)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from elasticsearch.helpers import scan, streaming_bulk

from cart import events, versions
from cart.documents import carts_alias, ensure_cart_index
from shopcart import es

BATCH = 500


def _abandoned(idle_days: int) -> Iterator[dict[str, Any]]:
    """The search hits of anonymous carts unchanged for `idle_days` whose events are all on the stream
    (an event not known to be published must reach it first: the relay publishes it, then the cart goes)."""
    query = {
        "bool": {
            "filter": [
                {"term": {"kind": "anonymous"}},
                {"range": {"updated_at": {"lt": f"now-{int(idle_days)}d"}}},
            ]
        }
    }
    hits = scan(
        es.client(),
        index=carts_alias(),
        query={"query": query, "seq_no_primary_term": True, "_source": ["pending_events"]},
        size=BATCH,
    )
    while batch := list(islice(hits, BATCH)):
        with_events = [hit["_id"] for hit in batch if hit["_source"].get("pending_events")]
        published = versions.published_of(with_events)
        for hit in batch:
            entries = hit["_source"].get("pending_events") or []
            if not events.unpublished(entries, published.get(hit["_id"], frozenset())):
                yield hit


def delete_abandoned_guest_carts(*, idle_days: int, dry_run: bool = False) -> int:
    """Delete the anonymous carts nobody has changed for `idle_days` (CART_GUEST_CART_RETENTION_DAYS by
    default, longer than a session lives): a guest's cart is reachable only through their session, so
    these are carts nobody can open any more. Returns how many were deleted (found, with `dry_run`).

    Safe beside live traffic: each cart is deleted only at the version the search matched (a delete
    conditional on its `_seq_no`/`_primary_term`, as the writes are), so a guest who comes back at that
    moment and changes the cart keeps it. (A scan and a bulk delete rather than `_delete_by_query`,
    which does the same but lives in the reindex module the local server lacks, docs/adr/0001.)"""
    if idle_days < 1:
        raise ValueError("idle_days must be at least 1")
    ensure_cart_index()
    if dry_run:
        return sum(1 for _ in _abandoned(idle_days))
    deletes = (
        {
            "_op_type": "delete",
            "_index": hit["_index"],
            "_id": hit["_id"],
            "if_seq_no": hit["_seq_no"],
            "if_primary_term": hit["_primary_term"],
        }
        for hit in _abandoned(idle_days)
    )
    deleted = 0
    for ok, item in streaming_bulk(es.writer(), deletes, raise_on_error=False, raise_on_exception=True):
        if ok:
            deleted += 1
        elif item["delete"].get("status") not in (404, 409):  # gone already, or changed since: both fine
            raise RuntimeError(f"deleting an abandoned cart failed: {item}")
    return deleted
