"""The catalog's Redis cache: every key it uses and every version that retires them, in one place.

Two kinds of version, both plain integers bumped with INCR by `bump()`, which every write to the
catalog calls after Elasticsearch has acknowledged it (catalog.services, catalog.indexes):
- the **catalog version**: part of every listing, search and detail key (`key()`), and recorded
  with each cached cart summary; a bump makes all of them unreachable on every replica at once;
- the version of each **offer bucket** (products by crc32 of their id, `OFFER_BUCKETS` of them): the
  offers cached in that bucket's hash (`offers_hash_key`); an edit retires 1/64 of the offers, not all.

The write order is the one rule that makes a reader's view consistent: the offer buckets are bumped
before the catalog version, so whoever reads the new catalog version also reads the new offers. A
reader that caches what it built under the catalog version (the cart summary) reads that version
first, then the offers (catalog.selectors.get_offers, `read_offers`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.core.signals import setting_changed
from django_redis import get_redis_connection

from catalog.documents import products_alias

VERSION_KEY = "catalog:version"
# How long a cached listing, product or offer hash lives: the bound on staleness after a write that
# bypassed the app (straight to Elasticsearch), which bumps nothing.
TTL = 300
OFFER_BUCKETS = 64


def redis() -> Any:
    return get_redis_connection("default")


def catalog_version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, 1, timeout=None)
        version = cache.get(VERSION_KEY, 1)
    return int(version)


def catalog_version_and_entry(key: str) -> tuple[int, bytes | None]:
    """The catalog version and the raw bytes stored under `key` (None if nothing), in one round trip:
    for a cache whose entries record the version they were built at (the cart summary) instead of being
    keyed by it, which would take a round trip for the version before the one for the entry. Raw, so
    the caller can tell a stale entry from its first bytes without decoding all of it."""
    raw_version, raw_value = redis().mget([cache.make_key(VERSION_KEY), cache.make_key(key)])
    version = int(raw_version) if raw_version is not None else catalog_version()
    return version, raw_value


def key(*parts: object, version: int | None = None) -> str:
    """A listing's, a search's or a product's key, under the current catalog version."""
    if version is None:
        version = catalog_version()
    # The alias is part of the key so two catalogs sharing one Redis (tests, several shops) never mix.
    return ":".join(["catalog", f"v{version}", products_alias(), *map(str, parts)])


def offer_bucket(product_id: str) -> int:
    return zlib.crc32(product_id.encode()) % OFFER_BUCKETS


# A 200-line cart's offers touch ~60 buckets: their two keys each, built with make_key and the alias
# every time, were ~10 % of its summary. Per prefix and alias, each bucket's two key stems are made once.
_stems: dict[tuple[str, str], list[tuple[str, str]]] = {}


def _forget_stems(**_: Any) -> None:
    _stems.clear()


setting_changed.connect(_forget_stems)  # CACHES or the index prefix overridden in a test


def _bucket_stems() -> list[tuple[str, str]]:
    """Per bucket: the key of its version, and its offer hash's key without the version number."""
    alias = products_alias()
    stems = _stems.get((cache.key_prefix, alias))
    if stems is None:
        stems = _stems[(cache.key_prefix, alias)] = [
            (
                cache.make_key(f"catalog:offers-version:{alias}:{bucket}"),
                cache.make_key(f"catalog:offers:{alias}:{bucket}:v"),
            )
            for bucket in range(OFFER_BUCKETS)
        ]
    return stems


# Each bucket's version, then its hash at that version (HMGET of the products asked for): one round trip,
# and one atomic read of every version involved.
_READ_OFFERS = """
local out, k, at = {}, 1, 1
while k <= #KEYS do
  local hash = ARGV[at] .. (redis.call('GET', KEYS[k]) or '0')
  local count = tonumber(ARGV[at + 1])
  local ids = {}
  for i = 1, count do ids[i] = ARGV[at + 1 + i] end
  out[#out + 1] = hash
  out[#out + 1] = redis.call('HMGET', hash, unpack(ids))
  at = at + 2 + count
  k = k + 1
end
return out
"""


def read_offers(by_bucket: dict[int, list[str]]) -> tuple[dict[int, str], dict[int, list[bytes | None]]]:
    """In one round trip, per bucket: the key of its offer hash at its current version, and the cached
    value of each product asked for (None: not cached)."""
    stems = _bucket_stems()
    buckets = list(by_bucket)
    args: list[str] = []
    for bucket in buckets:
        args += [stems[bucket][1], str(len(by_bucket[bucket])), *by_bucket[bucket]]
    answer = redis().eval(_READ_OFFERS, len(buckets), *[stems[bucket][0] for bucket in buckets], *args)
    hash_keys = {bucket: answer[2 * n].decode() for n, bucket in enumerate(buckets)}
    values = {bucket: answer[2 * n + 1] for n, bucket in enumerate(buckets)}
    return hash_keys, values


def bump(*, product_ids: Iterable[str] | None = None) -> None:
    """Retire what is cached about `product_ids` (about every product with None), after the write: their
    offer buckets' versions first, then the catalog version, in that order (see above). Listings and
    summaries always go; offers only of the products named."""
    buckets = range(OFFER_BUCKETS) if product_ids is None else sorted({offer_bucket(pid) for pid in product_ids})
    if buckets:
        stems = _bucket_stems()
        pipeline = redis().pipeline(transaction=False)
        for bucket in buckets:
            pipeline.incr(stems[bucket][0])
        pipeline.execute()
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no version yet: start one above catalog_version()'s default of 1
        cache.add(VERSION_KEY, 2, timeout=None)
