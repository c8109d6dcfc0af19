"""CPU time per component during a wrk run, from /proc: where the two cores went.

Throughput on this machine is bounded by CPU shared by everything (gunicorn, nginx, Elasticsearch,
Redis, NATS, wrk itself, and whatever else runs), so "CPU ms per request" by component explains a
ratio better than latency does: a scenario can be at most (baseline CPU per request / its CPU per
request) times the baseline's throughput, whatever the code does with its waiting.
"""

from __future__ import annotations

import os
from pathlib import Path

import benchenv as cfg

TICK = os.sysconf("SC_CLK_TCK")


def _read_stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of user + system, all threads) of one process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def roots() -> dict[int, str]:
    """The process tree roots of each component (their children belong to them too)."""
    found: dict[int, str] = {}
    run_dir = cfg.DEVSTACK_DIR / "run"
    for name in ("elasticsearch", "redis", "nats"):
        pid = _pid_from(run_dir / f"{name}.pid")
        if pid:
            found[pid] = name
    pid = _pid_from(cfg.REPLICAS_DIR / "nginx.pid")
    if pid:
        found[pid] = "nginx"
    for pidfile in cfg.REPLICAS_DIR.glob("replica-*.pid"):
        pid = _pid_from(pidfile)
        if pid:
            found[pid] = "gunicorn"
    return found


def snapshot() -> dict[str, float]:
    """CPU seconds used so far by each component's live processes, and by the whole machine."""
    known = roots()
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(entry)
            if stat:
                stats[int(entry)] = stat
    totals: dict[str, float] = {}
    for pid, (_, seconds) in stats.items():
        group, current, hops = "", pid, 0
        while current in stats and hops < 64:
            if current in known:
                group = known[current]
                break
            current, hops = stats[current][0], hops + 1
        if group:
            totals[group] = totals.get(group, 0.0) + seconds
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    # Busy = everything but idle and iowait.
    totals["machine"] = (sum(values) - values[3] - values[4]) / TICK
    return totals


def per_request(
    before: dict[str, float], after: dict[str, float], *, wrk_seconds: float, requests: int, wall_seconds: float
) -> dict[str, float]:
    """CPU milliseconds per request by component; `other` is the rest of the machine (other users'
    work included), `total_ours` what this request path costs on this machine, `other_share` the share
    of all cores that other work took meanwhile (high: the run competed with something else)."""
    if requests <= 0:
        return {}
    out: dict[str, float] = {}
    for group in ("gunicorn", "nginx", "elasticsearch", "redis", "nats"):
        out[group] = max(0.0, after.get(group, 0.0) - before.get(group, 0.0))
    out["wrk"] = wrk_seconds
    ours = sum(out.values())
    machine = after["machine"] - before["machine"]
    out["other"] = max(0.0, machine - ours)
    result = {group: round(1000 * seconds / requests, 3) for group, seconds in out.items()}
    result["total_ours"] = round(1000 * ours / requests, 3)
    result["other_share"] = round(out["other"] / (wall_seconds * (os.cpu_count() or 1)), 3)
    return result
