"""The one Elasticsearch connection, shared by every app through elasticsearch-dsl's registry."""

from typing import Any

import elastic_transport
import urllib3
from django.conf import settings
from elasticsearch import Elasticsearch
from elasticsearch_dsl import connections

from shopcart.service_urls import split_urls


def configure() -> None:
    connections.configure(
        default={
            "hosts": split_urls(settings.ELASTICSEARCH_URL),
            "request_timeout": settings.ELASTICSEARCH_TIMEOUT,
            # One retry covers a dropped keep-alive connection (or a dead node, when there are several);
            # more would only delay the 503.
            "max_retries": 1,
            "retry_on_timeout": False,
            "dead_node_backoff_factor": settings.ELASTICSEARCH_DEAD_NODE_BACKOFF,
            "max_dead_node_backoff": settings.ELASTICSEARCH_DEAD_NODE_BACKOFF * 4,
        }
    )


def client() -> Elasticsearch:
    return connections.get_connection()


# options() copies the client (~0.2 ms): each variant is made once per base client (configure() or a test
# replaces the base, and with it every variant).
_variants: dict[tuple[Any, ...], tuple[Elasticsearch, Elasticsearch]] = {}


def client_with(**options: Any) -> Elasticsearch:
    """The client with other transport options (`request_timeout`, `max_retries`), made once."""
    base, key = client(), tuple(sorted(options.items()))
    cached = _variants.get(key)
    if cached is None or cached[0] is not base:
        cached = _variants[key] = (base, base.options(**options))
    return cached[1]


def writer() -> Elasticsearch:
    """The one client for conditional writes (`if_seq_no`/`if_primary_term`, `op_type=create`): no
    transport-level retry. A conditional write re-sent after its answer was lost comes back as a conflict
    with itself (a false "SKU exists", "changed meanwhile", "cart busy"); the caller learns the outcome
    its own way instead (the cart by the operation id it records, the catalog by reading the product)."""
    return client_with(max_retries=0)


def admin_client() -> Elasticsearch:
    """For index management and bulk loads, which can legitimately take longer than a shopper's request
    (a new index on a cluster waits for its shards): ELASTICSEARCH_ADMIN_TIMEOUT instead of the short
    ELASTICSEARCH_TIMEOUT that lets a request leave a hung node quickly."""
    return client_with(request_timeout=settings.ELASTICSEARCH_ADMIN_TIMEOUT)


def index_name(name: str) -> str:
    """The physical name for a logical index, e.g. `products` -> `shopcart-products`."""
    return f"{settings.ELASTICSEARCH_INDEX_PREFIX}-{name}"


def replica_settings() -> dict[str, str]:
    """Index settings for replicas, given to every physical index the app creates: with the default
    `auto_expand_replicas` "0-1" an index is green on one node and has a copy on another node as
    soon as the cluster has two, so one node's loss loses no acknowledged write."""
    return {"auto_expand_replicas": settings.ELASTICSEARCH_AUTO_EXPAND_REPLICAS}


# Answers that mean "Elasticsearch (or the node we reached) cannot serve this now", not "this request is
# wrong": a node dying or unreachable behind the coordinating node, a shard with no live copy, a cluster
# without a master or with a write block. Statuses first; the error types cover those some versions
# answer with another status (cluster_block_exception is 403 for a read-only index).
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
UNAVAILABLE_ERROR_TYPES = frozenset(
    {
        "node_not_connected_exception",
        "node_disconnected_exception",
        "node_closed_exception",
        "connect_transport_exception",
        "no_shard_available_action_exception",
        "unavailable_shards_exception",
        "cluster_block_exception",
        "master_not_discovered_exception",
        "no_node_available_exception",
    }
)


def _error_types(exc: elastic_transport.ApiError) -> set[str]:
    types = {str(exc.message)}
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    if isinstance(error, dict):
        types.add(str(error.get("type", "")))
        types.update(str(cause.get("type", "")) for cause in error.get("root_cause") or [] if isinstance(cause, dict))
        caused_by = error.get("caused_by")
        if isinstance(caused_by, dict):
            types.add(str(caused_by.get("type", "")))
    return types


def never_sent(exc: BaseException | None) -> bool:
    """True when the request never left: no connection to Elasticsearch could be opened (refused, no
    route, connect timeout). Unlike a dropped or timed-out answer, nothing can have been applied."""
    if not isinstance(exc, elastic_transport.ConnectionError):
        return False
    causes = (*exc.errors, exc.__cause__)
    return any(isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionRefusedError) for cause in causes)


def refused(exc: BaseException | None) -> bool:
    """True when Elasticsearch answered that it will not write at all (a write block on the index or the
    cluster): unlike a lost answer, a definite "not applied"."""
    return isinstance(exc, elastic_transport.ApiError) and "cluster_block_exception" in _error_types(exc)


def is_unavailable(exc: BaseException | None) -> bool:
    """True when `exc` says Elasticsearch is unreachable or cannot serve the request at the moment: the
    one rule that turns such failures into the dependency-down 503 (shopcart.http_errors), and that tells a
    cart write its outcome is unknown (cart.services)."""
    if isinstance(exc, elastic_transport.ConnectionError | elastic_transport.ConnectionTimeout):
        return True  # TlsError is a ConnectionError
    if isinstance(exc, elastic_transport.ApiError):
        return exc.meta.status in UNAVAILABLE_STATUSES or bool(_error_types(exc) & UNAVAILABLE_ERROR_TYPES)
    return False
