"""Readiness checks: one small probe per dependency, each bounded by a short timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django_redis import get_redis_connection

from shopcart import es
from shopcart.eventbus import publisher

PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    up: bool
    latency_ms: float
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"status": "up" if self.up else "down", "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            result["error"] = self.error
        return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _elasticsearch() -> None:
    es.client().options(request_timeout=PROBE_TIMEOUT, max_retries=0).cluster.health()


def _redis() -> None:
    get_redis_connection("default").ping()


def _nats() -> None:
    publisher().ping()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "elasticsearch": _elasticsearch,
    "redis": _redis,
    "nats": _nats,
}


def run_checks() -> list[CheckResult]:
    results = []
    for name, probe in CHECKS.items():
        started = time.perf_counter()
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; it is reported, not raised
            results.append(
                CheckResult(name, False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
            )
        else:
            results.append(CheckResult(name, True, (time.perf_counter() - started) * 1000))
    return results
