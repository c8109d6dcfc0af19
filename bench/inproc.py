"""In-process steps of the benchmark, run by bench/run.py in a subprocess with the bench environment
(bench/benchenv.py): preparing users, tokens and carts, and the measurements that must bypass the
HTTP cache layer (uncached cart summaries, uncached search on two catalog sizes).

    python bench/inproc.py prepare --out data.json
    python bench/inproc.py summary --data data.json
    python bench/inproc.py search --small bench-1k --large bench-100k
    python bench/inproc.py writes --data data.json

Each prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchenv
import esstats

# bench/run.py passes the bench environment; run by hand, this script takes it from benchenv.
for _key, _value in benchenv.app_env().items():
    os.environ.setdefault(_key, _value)

import django  # noqa: E402 - after the environment is set

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import transaction  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import issue_token  # noqa: E402
from cart import selectors as cart_selectors  # noqa: E402
from cart import services as cart_services  # noqa: E402
from cart.owners import user_cart_id  # noqa: E402
from catalog import cache as catalog_cache  # noqa: E402
from catalog import seeding  # noqa: E402
from catalog.documents import ProductDocument, products_alias  # noqa: E402
from catalog.selectors import SORTS, search_products  # noqa: E402

SUMMARY_SIZES = (1, 20, 200)
# Products a benchmark adds or re-quantifies have at least this much stock, so "out of stock" answers
# come from real stock limits only, never from the choice of products.
MIN_STOCK = 50

# The search mix, mirrored by bench/lua/search.lua: a long tail, so most queries miss the cache as
# they would in a real shop with many visitors: word + item, typos (fuzzy matching) alone or with the
# other word, some single words; a category filter now and then, other sorts and later pages.
VOCABULARY = {
    "words": [word.lower() for word in seeding._SYNTHETIC_WORDS],
    "items": [item.lower() for item in seeding._SYNTHETIC_ITEMS],
    "categories": list(seeding._SYNTHETIC_CATEGORIES),
}


def _typo(rng: random.Random, word: str) -> str:
    at = rng.randrange(1, len(word))
    return word[:at] + rng.choice("abcdefghijklmnopqrstuvwxyz") + word[at + 1 :]


def search_params(rng: random.Random) -> dict[str, Any]:
    words, items = VOCABULARY["words"], VOCABULARY["items"]
    roll = rng.random()
    if roll < 0.2:
        query = rng.choice(words + items)
    elif roll < 0.6:
        query = f"{rng.choice(words)} {rng.choice(items)}"
    else:
        word, item = rng.choice(words), rng.choice(items)
        if rng.random() < 0.5:
            word = _typo(rng, word)
        else:
            item = _typo(rng, item)
        if rng.random() < 0.6:
            query = f"{word} {item}"
        elif rng.random() < 0.5:
            query = word
        else:
            query = item
    category = rng.choice(VOCABULARY["categories"]) if rng.random() < 0.3 else ""
    sort_roll = rng.random()
    sort = (
        "relevance" if sort_roll < 0.6 else "price" if sort_roll < 0.75 else "-price" if sort_roll < 0.9 else "newest"
    )
    page_roll = rng.random()
    page = 1 if page_roll < 0.7 else (2 if page_roll < 0.9 else 3)
    assert sort in SORTS
    return {"query": query, "category": category, "sort": sort, "page": page}


def distinct_search_params(count: int, *, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    seen: set[tuple[Any, ...]] = set()
    out = []
    while len(out) < count:
        params = search_params(rng)
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            out.append(params)
    return out


def stats_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "p50_ms": round(pct(50), 3),
        "p95_ms": round(pct(95), 3),
        "p99_ms": round(pct(99), 3),
    }


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


# -- prepare -------------------------------------------------------------------------------------------


def product_pool(size: int) -> list[str]:
    search = (
        ProductDocument.search(index=products_alias())
        .filter("term", active=True)
        .filter("range", stock={"gte": MIN_STOCK})
        .sort("sku")
        .source(False)
    )
    return [hit.meta.id for hit in search[:size].execute()]


def create_users(count: int) -> list[User]:
    with transaction.atomic():  # one commit, not one fsync per user
        # No usable password: the benchmark never logs in, it uses tokens (and hashing is slow on purpose).
        return [
            User.objects.create_user(email=f"bench-{n:05d}@bench.invalid", password=None, name=f"Bench {n}")
            for n in range(1, count + 1)
        ]


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)  # noqa: S311
    pool = product_pool(args.pool)
    if len(pool) < max(SUMMARY_SIZES) + args.lines_per_user:
        raise SystemExit(f"only {len(pool)} products with stock >= {MIN_STOCK}; seed the catalog first")
    users = create_users(args.users + len(SUMMARY_SIZES))
    shoppers, summary_users = users[: args.users], users[args.users :]

    # Every shopper starts with a few lines (set-quantity changes them; adds grow the carts further).
    lines = [rng.sample(pool, args.lines_per_user) for _ in shoppers]
    jobs = [
        (user_cart_id(user.pk), product) for user, products in zip(shoppers, lines, strict=True) for product in products
    ]

    def add(job: tuple[str, str]) -> None:
        cart_services.add_item(cart_id=job[0], product_id=job[1], quantity=1)

    def fill(user: User, size: int) -> None:
        for product in pool[:size]:
            cart_services.add_item(cart_id=user_cart_id(user.pk), product_id=product, quantity=1)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as executor:
        summary_jobs = [
            executor.submit(fill, user, size) for user, size in zip(summary_users, SUMMARY_SIZES, strict=True)
        ]
        list(executor.map(add, jobs))
        for job in summary_jobs:
            job.result()
    print(f"prepared {len(jobs)} cart lines in {time.monotonic() - started:.1f}s", file=sys.stderr)

    return {
        "tokens": [issue_token(user=user).auth_token for user in shoppers],
        "lines": lines,
        "products": pool,
        "summary": {
            str(size): {"token": issue_token(user=user).auth_token, "cart_id": user_cart_id(user.pk)}
            for user, size in zip(summary_users, SUMMARY_SIZES, strict=True)
        },
        "vocabulary": VOCABULARY,
    }


# -- measurements --------------------------------------------------------------------------------------


def summary(args: argparse.Namespace) -> dict[str, Any]:
    """Cart summary timings per cart size (get_summary: the cart's real-time GET, then the summary),
    on each of its three paths:

    * cached: the summary of this cart version is in Redis (a repeated GET);
    * cart_changed: the summary key deleted first, as after every cart write (the write's own answer
      and the next GET compute it): products come from the catalog-version product cache;
    * product_edited: as after an edit of one of the cart's products: the catalog version and that
      product's offer bucket bumped, so the summary is recomputed and that bucket's offers re-read;
    * catalog_changed: as after a bulk change (a bulk load creates products and changes none): the
      catalog version bumped, so the summary is recomputed, with the offers still cached;
    * cold: every offer bucket bumped too, as when the offers expired (catalog.cache.TTL) or the
      catalog was reset: nothing cached, every offer fetched from Elasticsearch in one multi-get.
    """
    data = json.loads(Path(args.data).read_text())
    out: dict[str, Any] = {}
    for size, entry in data["summary"].items():
        cart_id = entry["cart_id"]
        cart = cart_selectors.get_cart(cart_id=cart_id)
        assert len(cart.lines) == int(size), (cart_id, len(cart.lines), size)

        def get(cart_id: str = cart_id) -> float:
            return timed(lambda: cart_selectors.get_summary(cart_id=cart_id))

        def cart_changed(cart_id: str = cart_id) -> float:
            current = cart_selectors.get_cart(cart_id=cart_id)
            cache.delete(cart_selectors.summary_key(current))
            return get()

        def product_edited(product_id: str = cart.lines[0].product_id) -> float:
            catalog_cache.bump(product_ids=[product_id])  # what an edit of one of its products does
            return get()

        def catalog_changed() -> float:
            catalog_cache.bump(product_ids=())  # what a bulk load does
            return get()

        def cold() -> float:
            catalog_cache.bump()  # every offer bucket too: nothing cached
            return get()

        results: dict[str, Any] = {}
        paths = (
            ("cold", cold),
            ("catalog_changed", catalog_changed),
            ("product_edited", product_edited),
            ("cart_changed", cart_changed),
            ("cached", get),
        )
        for name, measure in paths:
            for _ in range(args.warmup):
                measure()
            results[name] = stats_ms([measure() for _ in range(args.iterations)])
        out[size] = results
    return out


def _es_cpu_seconds() -> float:
    """CPU seconds the local Elasticsearch process has used so far: the scheduler's nanoseconds summed over
    its threads (/proc's clock ticks of 10 ms would be too coarse for a few milliseconds a block)."""
    pid = (benchenv.DEVSTACK_DIR / "run" / "elasticsearch.pid").read_text().strip()
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def writes(args: argparse.Namespace) -> dict[str, Any]:
    """Cart writes one at a time, by cart size (the prepared 1-line and 200-line carts): an add of one
    item to the first line, then a set-quantity back, over and over (every call writes), in interleaved
    blocks so that the machine's noise and Elasticsearch's background work hit both sizes alike. Per write:
    Elasticsearch's CPU (median block) and the Elasticsearch requests it made, by route (the common case:
    no other request writes the cart meanwhile)."""
    data = json.loads(Path(args.data).read_text())
    carts = {size: data["summary"][size]["cart_id"] for size in ("1", "200")}
    first = {size: cart_selectors.get_cart(cart_id=cart_id).lines[0] for size, cart_id in carts.items()}
    samples: dict[str, list[float]] = {size: [] for size in carts}
    wall: dict[str, list[float]] = {size: [] for size in carts}
    routes: dict[str, dict[str, float]] = {}
    for block in range(args.warmup_blocks + args.blocks):
        for size, cart_id in carts.items():
            product_id, quantity = first[size].product_id, first[size].quantity
            requests_before = esstats.requests_by_route()
            es_before, started = _es_cpu_seconds(), time.perf_counter()
            for _ in range(args.block_size // 2):
                cart_services.add_item(cart_id=cart_id, product_id=product_id, quantity=1)
                cart_services.set_quantity(cart_id=cart_id, product_id=product_id, quantity=quantity)
            elapsed, es_cpu = time.perf_counter() - started, _es_cpu_seconds() - es_before
            done = 2 * (args.block_size // 2)
            if block >= args.warmup_blocks:
                samples[size].append(1000 * es_cpu / done)
                wall[size].append(1000 * elapsed / done)
                if block == args.warmup_blocks:
                    routes[size] = esstats.per_request(requests_before, esstats.requests_by_route(), requests=done)
    return {
        size: {
            "es_cpu_ms": round(statistics.median(samples[size]), 3),
            "wall_ms": round(statistics.median(wall[size]), 3),
            "writes": args.blocks * 2 * (args.block_size // 2),
            "es_requests_per_write": routes[size],
        }
        for size in carts
    }


def search(args: argparse.Namespace) -> dict[str, Any]:
    """Uncached search latency on two catalogs with the same distinct queries (so every one misses the
    cache), interleaved one by one so machine noise hits both catalogs alike."""
    prefixes = {"small": args.small, "large": args.large}
    warmup = distinct_search_params(args.warmup, seed=1)
    measured = distinct_search_params(args.queries, seed=2)
    samples: dict[str, list[float]] = {name: [] for name in prefixes}
    hits: dict[str, list[int]] = {name: [] for name in prefixes}

    def run(prefix: str, params: dict[str, Any]) -> tuple[float, int]:
        settings.ELASTICSEARCH_INDEX_PREFIX = prefix
        started = time.perf_counter()
        page = search_products(page_size=24, **params)
        return (time.perf_counter() - started) * 1000, page.total

    for params in warmup:
        for prefix in prefixes.values():
            run(prefix, params)
    for params in measured:
        for name, prefix in prefixes.items():
            elapsed, total = run(prefix, params)
            samples[name].append(elapsed)
            hits[name].append(total)
    return {
        name: {"prefix": prefix, **stats_ms(samples[name]), "median_hits": statistics.median(hits[name])}
        for name, prefix in prefixes.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--lines-per-user", type=int, default=3)
    p.add_argument("--pool", type=int, default=2000)
    p.add_argument("--out", required=True)
    s = commands.add_parser("summary")
    s.add_argument("--data", required=True)
    s.add_argument("--iterations", type=int, default=100)
    s.add_argument("--warmup", type=int, default=10)
    w = commands.add_parser("writes")
    w.add_argument("--data", required=True)
    w.add_argument("--blocks", type=int, default=15)
    w.add_argument("--block-size", type=int, default=20)
    w.add_argument("--warmup-blocks", type=int, default=2)
    q = commands.add_parser("search")
    q.add_argument("--small", required=True)
    q.add_argument("--large", required=True)
    q.add_argument("--queries", type=int, default=200)
    q.add_argument("--warmup", type=int, default=40)
    args = parser.parse_args(argv)

    if args.command == "prepare":
        result = prepare(args)
        Path(args.out).write_text(json.dumps(result))
        print(json.dumps({"users": len(result["tokens"]), "products": len(result["products"])}))
    elif args.command == "summary":
        print(json.dumps(summary(args)))
    elif args.command == "writes":
        print(json.dumps(writes(args)))
    else:
        print(json.dumps(search(args)))


if __name__ == "__main__":
    main()
