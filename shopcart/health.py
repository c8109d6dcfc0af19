"""Readiness checks: one small probe per dependency, each bounded by a short timeout.

A dependency is up when the app can use it (through whichever node answers). For a cluster the check
also lists every node it was configured with, up or down, so an operator sees a lost node while
the shop still works."""

from __future__ import annotations

import functools
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection
from elasticsearch import Elasticsearch

from shopcart import es
from shopcart.eventbus import publisher
from shopcart.service_urls import split_urls

PROBE_TIMEOUT = 1.0
NODE_TIMEOUT = 0.5


@dataclass(frozen=True)
class CheckResult:
    name: str
    up: bool
    latency_ms: float
    error: str = ""
    # What the probe learnt of a cluster: each node's state and e.g. the cluster health or the primary.
    details: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"status": "up" if self.up else "down", "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            result["error"] = self.error
        return result | self.details


def _states(addresses: list[str], probe: Callable[[str], str]) -> dict[str, str]:
    """{address: what `probe` says of it, or "down" if it failed}, probed in parallel so a hung node costs
    NODE_TIMEOUT once."""

    def state(address: str) -> str:
        try:
            return probe(address)
        except Exception:  # noqa: BLE001 - any failure means this node is down
            return "down"

    with ThreadPoolExecutor(max_workers=len(addresses)) as pool:
        return dict(zip(addresses, pool.map(state, addresses), strict=True))


def _each(addresses: list[str], probe: Callable[[str], object]) -> dict[str, str]:
    """{address: "up" | "down"}."""

    def up(address: str) -> str:
        probe(address)
        return "up"

    return _states(addresses, up)


@functools.cache
def _es_node(url: str) -> Elasticsearch:
    return Elasticsearch(hosts=[url], request_timeout=NODE_TIMEOUT, max_retries=0)


def _nats_server(url: str) -> None:
    """A NATS server greets every new connection with its INFO line; a hung one does not."""
    parsed = urlsplit(url)
    with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=NODE_TIMEOUT) as sock:
        sock.settimeout(NODE_TIMEOUT)
        greeting = sock.recv(4096)
    if not greeting.startswith(b"INFO "):
        raise ConnectionError(f"no INFO from {url}")
    json.loads(greeting[5:].split(b"\r\n", 1)[0])


def _redis_node(address: str) -> None:
    host, _, port = address.rpartition(":")
    client = redis.Redis(host=host, port=int(port), socket_timeout=NODE_TIMEOUT, socket_connect_timeout=NODE_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def database_nodes() -> list[tuple[str, str]]:
    """(host, port) of each node DATABASE_URL names: several for a primary and its standbys."""
    config = settings.DATABASES["default"]
    hosts = str(config.get("HOST") or "").split(",")
    ports = str(config.get("PORT") or "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    return list(zip(hosts, ports, strict=True))


def _postgres_role(address: str) -> str:
    """primary or standby: what the node at host:port says it is."""
    host, _, port = address.rpartition(":")
    config = settings.DATABASES["default"]
    with psycopg.connect(
        host=host,
        port=port,
        dbname=config["NAME"],
        user=config["USER"],
        password=config["PASSWORD"],
        connect_timeout=2,  # libpq's minimum; a refused connection fails at once
        options=f"-c statement_timeout={int(NODE_TIMEOUT * 1000)}",
    ) as conn:
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return "standby" if in_recovery and in_recovery[0] else "primary"


def _database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    nodes = [f"{host}:{port}" for host, port in database_nodes()]
    if len(nodes) < 2 or connection.vendor != "postgresql":
        return {}
    roles = _states(nodes, _postgres_role)
    return {
        "nodes": {node: "down" if role == "down" else "up" for node, role in roles.items()},
        "primary": next((node for node, role in roles.items() if role == "primary"), None),
        "standbys": [node for node, role in roles.items() if role == "standby"],
    }


def _elasticsearch() -> dict[str, object]:
    urls = split_urls(settings.ELASTICSEARCH_URL)
    # Each address at most once: a dead node of several must not make the replica unready.
    health = es.client().options(request_timeout=PROBE_TIMEOUT, max_retries=len(urls) - 1).cluster.health()
    details: dict[str, object] = {"cluster": health["status"], "cluster_nodes": health["number_of_nodes"]}
    # The colour is reported, not judged: it is cluster-wide, and one red index elsewhere must not take
    # every replica out of rotation.
    if len(urls) > 1:
        details["nodes"] = _each(urls, lambda url: _es_node(url).info())
    return details


def _redis() -> dict[str, object]:
    get_redis_connection("default").ping()
    if not settings.REDIS_SENTINELS:
        return {}
    sentinels = _each(settings.REDIS_SENTINELS, _redis_node)
    details: dict[str, object] = {"sentinels": sentinels}
    for address, state in sentinels.items():
        if state != "up":
            continue
        host, _, port = address.rpartition(":")
        sentinel = redis.Redis(host=host, port=int(port), socket_timeout=NODE_TIMEOUT, decode_responses=True)
        try:
            primary = sentinel.sentinel_master(settings.REDIS_SENTINEL_MASTER)
            replicas = sentinel.sentinel_slaves(settings.REDIS_SENTINEL_MASTER)
        except redis.RedisError:
            continue
        finally:
            sentinel.close()
        details["primary"] = f"{primary['ip']}:{primary['port']}"
        details["replicas"] = {
            f"{replica['ip']}:{replica['port']}": "down" if replica["is_odown"] or replica["is_sdown"] else "up"
            for replica in replicas
        }
        break
    return details


def _nats() -> dict[str, object]:
    publisher().ping()
    urls = split_urls(settings.NATS_URL)
    return {"nodes": _each(urls, _nats_server)} if len(urls) > 1 else {}


CHECKS: dict[str, Callable[[], object]] = {
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
            details = probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; it is reported, not raised
            results.append(
                CheckResult(name, False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
            )
        else:
            elapsed = (time.perf_counter() - started) * 1000
            results.append(CheckResult(name, True, elapsed, details=details if isinstance(details, dict) else {}))
    return results
