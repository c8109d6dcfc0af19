"""The one Elasticsearch connection, shared by every app through elasticsearch-dsl's registry."""

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


def admin_client() -> Elasticsearch:
    """For index management and bulk loads, which can legitimately take longer than a shopper's request
    (a new index on a cluster waits for its shards): ELASTICSEARCH_ADMIN_TIMEOUT instead of the short
    ELASTICSEARCH_TIMEOUT that lets a request leave a hung node quickly."""
    return client().options(request_timeout=settings.ELASTICSEARCH_ADMIN_TIMEOUT)


def index_name(name: str) -> str:
    """The physical name for a logical index, e.g. `products` -> `shopcart-products`."""
    return f"{settings.ELASTICSEARCH_INDEX_PREFIX}-{name}"


def replica_settings() -> dict[str, str]:
    """Index settings for replicas, given to every physical index the app creates: with the default
    `auto_expand_replicas` "0-1" an index is green on one node and has a copy on another node as
    soon as the cluster has two, so one node's loss loses no acknowledged write."""
    return {"auto_expand_replicas": settings.ELASTICSEARCH_AUTO_EXPAND_REPLICAS}
