"""Elasticsearch requests per app request, counted by Elasticsearch itself: the local node's HTTP
statistics count the requests of each REST route (`_nodes/_local/stats/http`, "routes"), so a snapshot
before and after a run says how many requests of which kind each app request cost, whoever sent them
(the request itself, the relay leader's searches and removals, an offer cache miss)."""

from __future__ import annotations

import json
import os
import urllib.request

ES_URL = os.environ.get("ELASTICSEARCH_URL", "http://127.0.0.1:9200").split(",")[0].rstrip("/")
# The routes of a cart's own document: a write (index), a real-time read (get) or an update.
CART_DOCUMENT_ROUTES = ("/{index}/_doc/{id}", "/{index}/_update/{id}", "/{index}/_create/{id}")


def requests_by_route() -> dict[str, int]:
    with urllib.request.urlopen(f"{ES_URL}/_nodes/_local/stats/http", timeout=10) as answer:  # noqa: S310 - loopback
        routes = next(iter(json.loads(answer.read())["nodes"].values()))["http"].get("routes", {})
    return {route: int(stats.get("requests", {}).get("count", 0)) for route, stats in routes.items()}


def per_request(before: dict[str, int], after: dict[str, int], *, requests: int) -> dict[str, float]:
    """Elasticsearch requests per app request, by route (only those used), with their `total`. The stats
    requests of the snapshot itself are left out."""
    used = {
        route: (after.get(route, 0) - before.get(route, 0)) / max(1, requests)
        for route in after
        if after.get(route, 0) > before.get(route, 0) and "/_nodes/" not in route
    }
    return {"total": round(sum(used.values()), 3), **{route: round(value, 3) for route, value in sorted(used.items())}}
