"""Addresses of the backing services, as the settings give them."""

from __future__ import annotations


def split_urls(value: str) -> list[str]:
    """`ELASTICSEARCH_URL` and `NATS_URL` take one address, or several separated by commas (the nodes of
    a cluster): the clients spread requests over them and go on with the others when one is down."""
    urls = [url.strip() for url in value.split(",") if url.strip()]
    if not urls:
        raise ValueError(f"no address in {value!r}")
    return urls
