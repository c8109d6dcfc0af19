"""Turns a run's measurements into ratios and target verdicts, the Markdown tables (printed, and written
into bench/README.md between its markers), the results JSON files and the plot."""

from __future__ import annotations

import json
import re
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import benchenv as cfg

README = cfg.BENCH_DIR / "README.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"

# The app's own CPU per request (gunicorn CPU at saturation), as a multiple of the same run's baseline
# (the trivial view's gunicorn CPU): a multiple holds across the machine's speed on the day, which the ms
# targets of issue 11 did not (they are retired). The cart writes' multiple is issue 18's; the others are
# the fifth round's proposal (bench/README.md). Efficiency: the measured throughput ratio / the "bound,
# app free" ratio, how much of what this machine's services, nginx and wrk leave possible the app reaches.
GUNICORN_CPU_MULTIPLES = {
    "add_to_cart": 3.5,
    "set_quantity": 3.5,
    "cart_summary": 2.5,
    "search": 2.5,
    "product_list": 3.0,
}
EFFICIENCY_TARGETS = {
    "add_to_cart": 0.75,
    "set_quantity": 0.75,
    "cart_summary": 0.75,
    "search": 0.85,
    "product_list": 0.6,
}
# Issue 18: Elasticsearch's CPU per cart write (ms, at saturation); its requests per write in the common case
# (one at a time, in process: bench/inproc.py writes); a 200-line cart's write against a 1-line cart's.
ES_CPU_TARGETS_MS = {"add_to_cart": 1.2, "set_quantity": 1.2}
ES_REQUESTS_PER_WRITE = 1.0
WRITE_200_OVER_1 = 2.0
# Add-to-cart throughput over the baseline's, against the same ratio before issue 18 (the run of
# `make bench` on main, 2026-12-05: add 188 req/s, baseline 1701 req/s): a before/after that holds across
# the machine's speed on the day. The back-to-back comparison of the two trees is bench/one_replica.py
# with --tree (bench/README.md, "Sixth round").
ADD_OVER_BASELINE_BEFORE = 188 / 1701
ADD_THROUGHPUT_OVER_BEFORE = 1.8
HALF_LOAD_P99_MS = 25.0
SUMMARY_200_OVER_1 = 3.0
SEARCH_LARGE_OVER_SMALL = 1.5
SUMMARY_SIZES = ("1", "20", "200")
# The paths of the cart summary (bench/inproc.py summary), fastest first.
SUMMARY_PATHS = {
    "cached": "cached (a repeated GET)",
    "cart_changed": "after a cart change (every write's answer)",
    "product_edited": "after an edit of one of its products",
    "catalog_changed": "after a bulk catalog change (a bulk load: the catalog version, not the offers)",
    "cold": "nothing cached (offers expired, or after seed --reset)",
}


def baseline_rps(results: dict[str, Any]) -> float:
    baseline = results["scenarios"]["baseline"]
    runs = [baseline["saturation"]["rps"], baseline.get("saturation_end", baseline["saturation"])["rps"]]
    return statistics.fmean(runs)


def _target(name: str, value: float, met: bool) -> dict[str, Any]:
    return {"target": name, "value": round(value, 3), "met": met}


def evaluate(results: dict[str, Any]) -> None:
    """Adds `ratio` to every scenario, the summary and search ratios, and the `targets` verdicts."""
    base = baseline_rps(results)
    results["baseline_rps"] = round(base, 1)
    for scenario in results["scenarios"].values():
        scenario["ratio"] = round(scenario["saturation"]["rps"] / base, 3)
    results["cpu_bounds"] = bounds = cpu_bounds(results)
    targets: list[dict[str, Any]] = []
    base_cpu = results["scenarios"]["baseline"]["saturation"].get("cpu_ms_per_request") or {}
    for key, multiple in GUNICORN_CPU_MULTIPLES.items():
        cpu = results["scenarios"].get(key, {}).get("saturation", {}).get("cpu_ms_per_request")
        if cpu and base_cpu.get("gunicorn"):
            ratio = cpu["gunicorn"] / base_cpu["gunicorn"]
            name = (
                f"{key}: gunicorn CPU ({cpu['gunicorn']:.2f} ms) <= {multiple:g}x the baseline's "
                f"({base_cpu['gunicorn']:.2f} ms); measured: the multiple"
            )
            targets.append(_target(name, ratio, ratio <= multiple))
    for key, maximum in ES_CPU_TARGETS_MS.items():
        cpu = results["scenarios"].get(key, {}).get("saturation", {}).get("cpu_ms_per_request")
        if cpu:
            name = f"{key}: Elasticsearch CPU <= {maximum:g} ms/request"
            targets.append(_target(name, cpu["elasticsearch"], cpu["elasticsearch"] <= maximum))
    add = results["scenarios"].get("add_to_cart")
    if add:
        over_before = add["ratio"] / ADD_OVER_BASELINE_BEFORE
        name = f"add_to_cart: throughput >= {ADD_THROUGHPUT_OVER_BEFORE:g}x before issue 18 (both over their baseline)"
        targets.append(_target(name, over_before, over_before >= ADD_THROUGHPUT_OVER_BEFORE))
    writes = results.get("writes_inproc")
    if writes:
        for size in ("1", "200"):
            per_write = writes[size]["es_requests_per_write"]["total"]
            name = f"cart write ({size}-line cart, one at a time): Elasticsearch requests <= {ES_REQUESTS_PER_WRITE:g}"
            targets.append(_target(name, per_write, per_write <= ES_REQUESTS_PER_WRITE))
        ratio = writes["200"]["es_cpu_ms"] / writes["1"]["es_cpu_ms"]
        results["write_200_over_1"] = round(ratio, 2)
        name = f"cart write: 200 lines <= {WRITE_200_OVER_1:g}x 1 line, Elasticsearch CPU"
        targets.append(_target(name, ratio, ratio <= WRITE_200_OVER_1))
    for key, minimum in EFFICIENCY_TARGETS.items():
        if key in bounds:
            efficiency = bounds[key]["efficiency"]
            name = f"{key}: efficiency (x baseline / bound, app free) >= {minimum:g}"
            targets.append(_target(name, efficiency, efficiency >= minimum))
    for key, scenario in results["scenarios"].items():
        p99 = scenario["half_load"]["latency_ms"]["p99"]
        name = f"{key}: p99 at half of saturation <= {HALF_LOAD_P99_MS:g} ms"
        targets.append(_target(name, p99, p99 <= HALF_LOAD_P99_MS))

    ratios: dict[str, float] = {}
    http = results.get("summary_http")
    if http:
        ratios["cached_http"] = http["200"]["latency_ms"]["p50"] / http["1"]["latency_ms"]["p50"]
    inproc = results.get("summary_inproc")
    if inproc:
        for path in SUMMARY_PATHS:
            ratios[path] = inproc["200"][path]["p50_ms"] / inproc["1"][path]["p50_ms"]
    results["summary_200_over_1"] = {name: round(value, 2) for name, value in ratios.items()}
    labels = {"cached_http": "GET /api/user/cart over HTTP, cached", **SUMMARY_PATHS}
    for name, value in ratios.items():
        label = f"summary: 200 lines <= {SUMMARY_200_OVER_1:g}x 1 line, {labels[name]}"
        targets.append(_target(label, value, value <= SUMMARY_200_OVER_1))

    search = results.get("search_inproc")
    if search:
        ratio = search["large"]["p50_ms"] / search["small"]["p50_ms"]
        results["search_large_over_small"] = round(ratio, 2)
        label = f"search: 100 000 products <= {SEARCH_LARGE_OVER_SMALL:g}x 1 000 (uncached, p50)"
        targets.append(_target(label, ratio, ratio <= SEARCH_LARGE_OVER_SMALL))
    results["targets"] = targets


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _header(results: dict[str, Any]) -> str:
    m, v, c = results["machine"], results["versions"], results["config"]
    wrk = c["wrk"]
    return (
        f"Run of {results['timestamp']}: {m['nproc']} cores ({m['cpu_model']}), load average "
        f"{m['loadavg_start'][0]:.2f} at the start and {m.get('loadavg_end', [0])[0]:.2f} at the end; "
        f"Elasticsearch {v['elasticsearch']}, Python {v['python']}, Django {v['django']}; {c['replicas']} replicas "
        f"x {c['gunicorn_workers_per_replica']} workers x {c['gunicorn_threads_per_worker']} threads behind nginx; "
        f"wrk {wrk['threads']} threads x {wrk['connections']} connections, {wrk['duration_s']:g} s per saturation "
        f"run, {wrk['paced_duration_s']:g} s paced. `make bench` took {results['runtime_s']:.0f} s."
        + _es_uptime_note(results)
    )


# Below this uptime the Elasticsearch node's JIT is still cold (bench/run.py ES_COLD_BEFORE_S).
ES_COLD_BEFORE_S = 900


def _es_uptime_note(results: dict[str, Any]) -> str:
    uptime = results.get("elasticsearch_uptime_s")
    if uptime is None:
        return ""
    if uptime < ES_COLD_BEFORE_S:
        return (
            f" **Elasticsearch had started {uptime} s before the measurement: unless it served a bench run since, "
            "its JIT was cold and its CPU figures are up to 2x the warm ones; compare runs on a warm node.**"
        )
    return f" Elasticsearch had been up {uptime} s (warm)."


def _scenario_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | request | req/s | x baseline | p50 ms | p95 ms | p99 ms | non-2xx | half load: req/s | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in results["scenarios"].items():
        sat, half = s["saturation"], s["half_load"]
        rps = f"{sat['rps']:.0f}"
        if key == "baseline" and "saturation_end" in s:
            rps = f"{results['baseline_rps']:.0f} ({sat['rps']:.0f} / {s['saturation_end']['rps']:.0f})"
        non2xx = f"{sat['non_2xx']} of {sat['requests']}"
        if sat["socket_errors"]:
            non2xx += f", {sat['socket_errors']} socket errors"
        latency = sat["latency_ms"]
        lines.append(
            f"| {s['title']} | `{s['request']}` | {rps} | {s['ratio']:.2f} | {_ms(latency['p50'])} | "
            f"{_ms(latency['p95'])} | {_ms(latency['p99'])} | {non2xx} | {half['rps']:.0f} | "
            f"{_ms(half['latency_ms']['p99'])} |"
        )
    return lines


def _cpu_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "CPU milliseconds per request at saturation, by component (from /proc). *Bound*: the throughput ratio "
        "that CPU cost alone allows on this machine (baseline CPU per request / this scenario's). *Bound, app "
        "free*: the same if the app's own code cost nothing beyond what the baseline's gunicorn does (this "
        "scenario's gunicorn CPU replaced by the baseline's): what Elasticsearch, Redis, NATS, nginx and wrk "
        "alone leave possible. *Efficiency*: the measured ratio to the baseline (x baseline) divided by *bound, "
        "app free*, the share of that possible throughput the app reaches. *Others*: the share of the cores that "
        "work outside the shop took meanwhile (other users of the machine).",
        "",
        "| scenario | gunicorn | nginx | Elasticsearch | Redis | NATS | wrk | total | bound | bound, app free | "
        "efficiency | others |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bounds = results.get("cpu_bounds", {})
    for key, s in results["scenarios"].items():
        c = s["saturation"].get("cpu_ms_per_request")
        if not c:
            continue
        bound = bounds.get(key, {})
        lines.append(
            f"| {s['title']} | {c['gunicorn']:.2f} | {c['nginx']:.2f} | {c['elasticsearch']:.2f} | "
            f"{c['redis']:.2f} | {c['nats']:.2f} | {c['wrk']:.2f} | {c['total_ours']:.2f} | "
            f"{_ratio(bound.get('cpu'))} | {_ratio(bound.get('app_free'))} | {_share(bound.get('efficiency'))} | "
            f"{100 * c.get('other_share', 0):.0f} % |"
        )
    return lines


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def cpu_bounds(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per scenario, the throughput ratios its CPU per request allows on this machine: as measured
    (`cpu`), and with the app's own code free (`app_free`: its gunicorn CPU replaced by the baseline's,
    so only the services, nginx and wrk cost anything more than the trivial view), and the `efficiency`:
    the measured ratio (requests/s over the baseline's) divided by `app_free`."""
    base = results["scenarios"]["baseline"]["saturation"].get("cpu_ms_per_request")
    if not base or not base.get("total_ours"):
        return {}
    bounds = {}
    for key, scenario in results["scenarios"].items():
        c = scenario["saturation"].get("cpu_ms_per_request")
        if not c or not c.get("total_ours"):
            continue
        app_free_total = c["total_ours"] - c["gunicorn"] + base["gunicorn"]
        app_free = base["total_ours"] / app_free_total
        bounds[key] = {
            "cpu": round(base["total_ours"] / c["total_ours"], 3),
            "app_free": round(app_free, 3),
        }
        if "ratio" in scenario:
            bounds[key]["efficiency"] = round(scenario["ratio"] / app_free, 3)
    return bounds


def _summary_table(results: dict[str, Any]) -> list[str]:
    inproc, http = results.get("summary_inproc"), results.get("summary_http")
    if not inproc:
        return []
    lines = [
        "Cart summary by cart size, p50 / p95 ms. In process: `get_summary` (the cart's real-time GET, then "
        "the summary) on each path; over HTTP: `GET /api/user/cart` through nginx, one connection, cached path.",
        "",
        "| lines | " + " | ".join(SUMMARY_PATHS.values()) + " | over HTTP (cached) |",
        "|---:|" + "---:|" * (len(SUMMARY_PATHS) + 1),
    ]
    for size in SUMMARY_SIZES:
        cells = [f"{_ms(inproc[size][p]['p50_ms'])} / {_ms(inproc[size][p]['p95_ms'])}" for p in SUMMARY_PATHS]
        h = http[size]["latency_ms"] if http else None
        cells.append(f"{_ms(h['p50'])} / {_ms(h['p95'])}" if h else "n/a")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    ratios = results["summary_200_over_1"]
    lines += [
        "",
        "200 lines / 1 line (p50): "
        + ", ".join(f"{name.replace('_', ' ')} {value}x" for name, value in ratios.items())
        + ".",
    ]
    return lines


def _search_table(results: dict[str, Any]) -> list[str]:
    search = results.get("search_inproc")
    if not search:
        return []
    rows = []
    for label, s in (("1 000 products", search["small"]), ("100 000 products", search["large"])):
        rows.append(
            f"| {label} | {_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} | {_ms(s['mean_ms'])} | {s['median_hits']:g} |"
        )
    return [
        f"Uncached search in process (`search_products`), the same {search['small']['n']} distinct queries on each "
        "catalog, interleaved one by one:",
        "",
        "| catalog | p50 ms | p95 ms | mean ms | median hits |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ]


def _verdict(target: dict[str, Any]) -> str:
    return "met" if target["met"] else "**missed**"


def table(results: dict[str, Any]) -> str:
    lines = [_header(results), ""]
    lines += [f"**Warning: {warning}.**\n" for warning in results.get("warnings", [])]
    lines += _scenario_table(results)
    search = results["scenarios"].get("search")
    if search:
        requests = max(1, search["saturation"]["requests"])
        # wrk also builds the requests still in flight when it stops: never more distinct than answered.
        distinct = min(requests, search["saturation"]["extra"].get("distinct_queries", 0))
        lines += [
            "",
            f"Search: {distinct} distinct queries in {requests} requests, so about {100 * distinct / requests:.0f} % "
            "were cache misses (the first occurrence of a query always misses; the cache starts empty).",
        ]
    lines += ["", "| target | measured | verdict |", "|---|---:|---|"]
    lines += [f"| {t['target']} | {t['value']} | {_verdict(t)} |" for t in results["targets"]]
    for block in (_cpu_table(results), _summary_table(results), _search_table(results)):
        if block:
            lines += ["", *block]
    seeding = results.get("seeding", {}).get("large")
    if seeding:
        count = f"{seeding['products']:,}".replace(",", " ")
        lines += [
            "",
            f"Seeding {count} products (`manage.py seed --products {seeding['products']}` into a fresh prefix): "
            f"{seeding['load_s']:.1f} s of bulk loading, {seeding['command_s']:.1f} s for the whole command.",
        ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = results["scenarios"]
    keys = list(scenarios)
    titles = [scenarios[key]["title"].replace(": trivial view", "").replace(" (uncached)", "") for key in keys]
    fig, axes = plt.subplots(2, 3, figsize=(19, 9.5))
    fig.suptitle(
        f"shopcart benchmark {results['timestamp']}: {results['machine']['nproc']} cores, "
        f"{results['config']['replicas']} replicas behind nginx, production settings"
    )

    ax = axes[0][0]
    bars = ax.bar(titles, [scenarios[key]["saturation"]["rps"] for key in keys], color="#4c72b0")
    bars[0].set_color("#888888")
    for bar, key in zip(bars, keys, strict=True):
        label = f"{scenarios[key]['ratio']:.2f}x"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom")
    bounds = results.get("cpu_bounds", {})
    for key, share in EFFICIENCY_TARGETS.items():
        if key in keys and key in bounds:
            # The target efficiency times what the services alone allow, in requests/s.
            i, rps = keys.index(key), results["baseline_rps"] * bounds[key]["app_free"] * share
            ax.hlines(rps, i - 0.4, i + 0.4, colors="#c44e52", linestyles="--")
    ax.set_title("Throughput at saturation, req/s (label: x baseline; dashed: efficiency target)")
    ax.tick_params(axis="x", rotation=25)

    ax = axes[0][1]
    width = 0.2
    for n, (name, color) in enumerate([("p50", "#55a868"), ("p95", "#dd8452"), ("p99", "#c44e52")]):
        values = [scenarios[key]["saturation"]["latency_ms"][name] for key in keys]
        positions = [i + (n - 1.5) * width for i in range(len(keys))]
        ax.bar(positions, values, width, label=f"{name} at saturation", color=color)
    half = [scenarios[key]["half_load"]["latency_ms"]["p99"] for key in keys]
    ax.bar([i + 1.5 * width for i in range(len(keys))], half, width, label="p99 at half load", color="#8172b3")
    ax.axhline(HALF_LOAD_P99_MS, color="#8172b3", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(keys)), titles, rotation=25)
    ax.set_yscale("log")
    ax.set_title("Latency, ms (log scale; dashed: 25 ms half-load target)")
    ax.legend(fontsize=8)

    ax = axes[0][2]
    groups = [("gunicorn", "#4c72b0"), ("elasticsearch", "#dd8452"), ("nginx", "#55a868"), ("redis", "#c44e52")]
    groups += [("nats", "#8172b3"), ("wrk", "#937860")]
    bottom = [0.0] * len(keys)
    for group, color in groups:
        values = [scenarios[key]["saturation"].get("cpu_ms_per_request", {}).get(group, 0.0) for key in keys]
        ax.bar(titles, values, bottom=bottom, label=group, color=color)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("CPU ms per request at saturation, by component")
    ax.tick_params(axis="x", rotation=25)
    ax.legend(fontsize=8)

    ax = axes[1][0]
    inproc, http = results.get("summary_inproc"), results.get("summary_http")
    if inproc:
        for path_key, label in SUMMARY_PATHS.items():
            ax.plot(SUMMARY_SIZES, [inproc[s][path_key]["p50_ms"] for s in SUMMARY_SIZES], "o-", label=label)
        if http:
            ax.plot(SUMMARY_SIZES, [http[s]["latency_ms"]["p50"] for s in SUMMARY_SIZES], "o--", label="over HTTP")
        ax.set_title("Cart summary p50 latency (ms) by lines in the cart")
        ax.legend(fontsize=8)

    ax = axes[1][1]
    search = results.get("search_inproc")
    if search:
        for n, (name, color) in enumerate([("p50_ms", "#55a868"), ("p95_ms", "#dd8452")]):
            values = [search["small"][name], search["large"][name]]
            ax.bar([i + (n - 0.5) * 0.35 for i in range(2)], values, 0.35, label=name[:3], color=color)
        ax.set_xticks(range(2), ["1 000 products", "100 000 products"])
        ax.set_title("Uncached search latency in process (ms)")
        ax.legend(fontsize=8)

    ax = axes[1][2]
    ax.axis("off")
    verdicts = [f"{'met   ' if t['met'] else 'MISSED'}  {t['target']}: {t['value']}" for t in results["targets"]]
    seeding = results.get("seeding", {}).get("large")
    if seeding:
        verdicts.append(f"seeding 100 000 products: {seeding['command_s']:.1f} s")
    ax.text(0, 1, "\n".join(verdicts), va="top", family="monospace", fontsize=7.5)
    ax.set_title("Targets")

    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write(results: dict[str, Any], *, timestamp: datetime) -> list[Path]:
    cfg.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    run_file = cfg.RESULTS_DIR / f"{timestamp.strftime('%Y%m%dT%H%M%SZ')}.json"
    text = json.dumps(results, indent=2) + "\n"
    run_file.write_text(text)
    latest = cfg.RESULTS_DIR / "latest.json"
    latest.write_text(text)
    png = cfg.RESULTS_DIR / "latest.png"
    plot(results, png)
    block = f"{START}\n{table(results)}\n{END}"
    readme = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, README.read_text(), flags=re.DOTALL)
    README.write_text(readme)
    return [run_file, latest, png, README]
