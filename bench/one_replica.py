"""gunicorn CPU per request on one replica, for a before/after that needs gunicorn itself (its HTTP
handling, threads, access log) but not a whole `make bench`: one replica of a source tree (the shipped
`shopcart/gunicorn_conf.py` unless `--extra` says otherwise) on the prepared bench state, wrk straight at
it with `Connection: close` (as nginx without upstream keep-alive), and the CPU of the gunicorn process
tree read from /proc around each run (user and system apart); also the CPU of the local Elasticsearch
process and the requests it counted by route (bench/esstats.py), per request.

    .venv/bin/python bench/run.py --prepare-only                       # the bench state
    .venv/bin/python bench/one_replica.py baseline cart_summary -d 6 --rounds 2
    .venv/bin/python bench/one_replica.py baseline --tree /tmp/before  # another copy of the tree
    .venv/bin/python bench/one_replica.py baseline --env CART_RELAY_THREAD=false
    BENCH_NAMESPACE=bench-before .venv/bin/python bench/one_replica.py add_to_cart --tree /tmp/before
                                   # a tree whose cart index cannot share the other's: a state of its own

Keep runs short (the machine is shared): a few seconds per scenario is enough for CPU per request,
and alternating two trees a few times says more than one long run of each.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import benchenv as cfg
import esstats

TICK = os.sysconf("SC_CLK_TCK")


def es_pid() -> int | None:
    try:
        return int((cfg.DEVSTACK_DIR / "run" / "elasticsearch.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def tree_cpu(root: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and all its descendants."""
    stats: dict[int, tuple[int, float, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), int(fields[11]) / TICK, int(fields[12]) / TICK)
    user = system = 0.0
    pending = [root]
    while pending:
        pid = pending.pop()
        if pid in stats:
            user += stats[pid][1]
            system += stats[pid][2]
        pending += [child for child, (parent, _, _) in stats.items() if parent == pid]
    return user, system


def routes(per_request: dict[str, float]) -> str:
    return ", ".join(f"{route} {n:.2f}" for route, n in per_request.items() if route != "total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="+", help="bench/lua/<name>.lua: baseline, cart_summary, add_to_cart...")
    parser.add_argument("--tree", type=Path, default=cfg.ROOT, help="the source tree to run (with .venv)")
    parser.add_argument("--port", type=int, default=cfg.PORT + 900)
    parser.add_argument("-d", "--duration", type=float, default=6)
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=value settings for the replica")
    parser.add_argument("--extra", default="", help="more gunicorn arguments, e.g. '--workers=4'")
    parser.add_argument("--keepalive", action="store_true", help="let wrk keep connections open")
    args = parser.parse_args()

    env = cfg.app_env()
    env.update(dict(item.split("=", 1) for item in args.env))
    log = (cfg.WORK_DIR / f"one-replica-{args.port}.log").open("w")
    command = [str(args.tree / ".venv/bin/gunicorn"), "shopcart.wsgi", "-c", "shopcart/gunicorn_conf.py"]
    command += ["--bind", f"{cfg.HOST}:{args.port}", *args.extra.split()]
    server = subprocess.Popen(command, cwd=args.tree, env=env, stdout=log, stderr=log, start_new_session=True)  # noqa: S603
    url = f"http://{cfg.HOST}:{args.port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.2)
        wrk_env = dict(os.environ, BENCH_DATA=str(cfg.WORK_DIR / "data.lua"), BENCH_LUA_DIR=str(cfg.LUA_DIR))

        def wrk(scenario: str, duration: float, seed: int) -> dict[str, float]:
            wrk_env["BENCH_SEED"] = str(seed)
            headers = [] if args.keepalive else ["-H", "Connection: close"]
            script = str(cfg.LUA_DIR / f"{scenario}.lua")
            elasticsearch = es_pid()
            es_before = tree_cpu(elasticsearch) if elasticsearch else (0.0, 0.0)
            es_requests_before = esstats.requests_by_route()
            before, started = tree_cpu(server.pid), time.monotonic()
            output = subprocess.run(  # noqa: S603
                ["wrk", "-t2", f"-c{args.connections}", f"-d{duration:g}s", *headers, "-s", script, url],  # noqa: S607
                env=wrk_env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            wall, after = time.monotonic() - started, tree_cpu(server.pid)
            es_after = tree_cpu(elasticsearch) if elasticsearch else (0.0, 0.0)
            es_requests = esstats.per_request(es_requests_before, esstats.requests_by_route(), requests=1)
            line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
            raw = json.loads(line.removeprefix("BENCH_JSON "))
            count = raw["requests"]
            return {
                "requests": count,
                "rps": count / wall,
                "user": 1000 * (after[0] - before[0]) / count,
                "system": 1000 * (after[1] - before[1]) / count,
                "es": 1000 * (sum(es_after) - sum(es_before)) / count,
                "es_requests": {route: n / count for route, n in es_requests.items()},
                "non_2xx": sum(n for code, n in raw["statuses"].items() if not code.startswith("2")),
            }

        for scenario in dict.fromkeys(args.scenarios):
            wrk(scenario, 2, 1)  # warm-up: imports, connections, caches
        for round_ in range(args.rounds):
            for scenario in args.scenarios:
                r = wrk(scenario, args.duration, 100 + round_)
                print(
                    f"{scenario:14} {r['user'] + r['system']:6.3f} ms/request (user {r['user']:.3f}, system "
                    f"{r['system']:.3f})  {r['rps']:7.1f} req/s  {r['requests']:.0f} requests, {r['non_2xx']:.0f} "
                    f"non-2xx  Elasticsearch {r['es']:.3f} ms/request, {r['es_requests']['total']:.2f} "
                    f"requests/request ({routes(r['es_requests'])})  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()


if __name__ == "__main__":
    main()
