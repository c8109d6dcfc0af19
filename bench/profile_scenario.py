"""Profile one benchmark scenario in process with pyinstrument, through Django's real WSGI handler
(every middleware, the API, the services, real Elasticsearch/Redis/NATS), one request after another.

    .venv/bin/python bench/run.py --prepare-only          # the bench state (catalog, shoppers, carts)
    .venv/bin/python bench/profile_scenario.py search -n 300       # text profile on stdout
    .venv/bin/python bench/profile_scenario.py add_to_cart --html /tmp/add.html

It prints the mean time per request too, so a change can be compared before/after without wrk's noise
(the machine is shared; in-process serial timings are steadier than throughput).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchenv as cfg

os.environ.update(cfg.app_env())  # the production settings of the benchmark

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from inproc import search_params  # noqa: E402

Request = tuple[str, str, dict[str, str], bytes]


def call(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> int:
    """One request through the WSGI application, as gunicorn would hand it over."""
    route, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": cfg.HOST,
        "SERVER_PORT": str(cfg.PORT),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": f"{cfg.HOST}:{cfg.PORT}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json" if body else "",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    result = application(environ, lambda s, h, exc_info=None: status.append(s))
    try:
        b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return int(status[0].split()[0])


def requests_for(scenario: str, data: dict[str, Any], rng: random.Random) -> Callable[[], Request]:
    tokens, products, lines = data["tokens"], data["products"], data["lines"]

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def search() -> Request:
        params = search_params(rng)
        query = f"q={params['query'].replace(' ', '+')}&sort={params['sort']}&page={params['page']}"
        if params["category"]:
            query += f"&category={params['category']}"
        # A random extra parameter value keeps every query a cache miss.
        return ("GET", f"/api/products?{query}&page_size={rng.randint(20, 30)}", {}, b"")

    def add() -> Request:
        body = json.dumps({"productId": rng.choice(products), "quantity": 1}).encode()
        return ("POST", "/api/user/cart", bearer(rng.choice(tokens)), body)

    def set_quantity() -> Request:
        shopper = rng.randrange(len(tokens))
        body = json.dumps({"quantity": rng.randint(1, 9)}).encode()
        return ("PATCH", f"/api/user/cart/items/{rng.choice(lines[shopper])}", bearer(tokens[shopper]), body)

    def summary(size: str | None = None) -> Callable[[], Request]:
        def make() -> Request:
            token = data["summary"][size]["token"] if size else rng.choice(tokens)
            return ("GET", "/api/user/cart", bearer(token), b"")

        return make

    table: dict[str, Callable[[], Request]] = {
        "baseline": lambda: ("GET", "/healthz", {}, b""),
        "product_list": lambda: ("GET", "/", {"Accept": "text/html"}, b""),
        "search": search,
        "add_to_cart": add,
        "set_quantity": set_quantity,
        "cart_summary": summary(),
        "summary_200": summary("200"),
    }
    return table[scenario]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--html", help="write pyinstrument's HTML report here")
    parser.add_argument("--no-profile", action="store_true", help="only time the requests")
    args = parser.parse_args()

    data = json.loads((cfg.WORK_DIR / "data.json").read_text())
    # Seeded from the clock: a rerun must not replay the previous run's (now cached) searches.
    make = requests_for(args.scenario, data, random.Random(time.time_ns()))  # noqa: S311
    for _ in range(args.warmup):
        call(*make())
    batch = [make() for _ in range(args.requests)]

    statuses: dict[int, int] = {}
    profiler = None
    if not args.no_profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    started, cpu_started, thread_started = time.perf_counter(), time.process_time(), time.thread_time()
    for request in batch:
        status = call(*request)
        statuses[status] = statuses.get(status, 0) + 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    thread_cpu = time.thread_time() - thread_started
    if profiler is not None:
        profiler.stop()
        if args.html:
            Path(args.html).write_text(profiler.output_html())
        else:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    each, cpu_each = 1000 * elapsed / args.requests, 1000 * cpu / args.requests
    print(
        f"{args.scenario}: {args.requests} requests, {each:.2f} ms each ({cpu_each:.2f} ms CPU in this process, "
        f"{1000 * thread_cpu / args.requests:.2f} of it in the request's thread; the rest: NATS client, relay)",
        statuses,
    )


if __name__ == "__main__":
    main()
