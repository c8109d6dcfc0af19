"""Cluster faults: nodes of a 3-node Elasticsearch, NATS and Redis (Sentinel) cluster and of a PostgreSQL
primary + hot standby killed or hung under the app's load, through real gunicorn replicas and real HTTP
clients.

The module starts the clustered stack itself (`devstack/cluster.sh up`, on its own ports, beside the
shared single-node stack; an already running cluster is used as it is and left running) and stops it
at the end. Each fault runs while a few shoppers (each with an own cart) add one item at a time
through two gunicorn replicas, every add with an `Idempotency-Key`; a shopper whose add fails
(503, a broken connection) retries it with the same key until it gets an answer, as a careful
client would. For each fault the test asserts, and prints one line of figures:

* acknowledged adds == the quantity stored in each cart (nothing lost, nothing applied twice);
* every applied change has exactly one event on the stream (by eventId), its old/new quantities
  covering each step 0 -> 1 -> ... -> stored exactly once;
* no 500, and 503s only inside the failover windows (after the fault, after the node's return);
* adds work again within 10 s (Elasticsearch, Redis) and events flow again within 15 s (NATS);
* after the node returns, the cluster is healthy again (ES green with 3 nodes, every NATS server
  current, Sentinel quorum and a linked replica, a PostgreSQL standby streaming from the primary).

The PostgreSQL primary's death adds sign-ups and log-ins to the load, and the promotion of the standby
the way docs/operations.md tells an operator to; it asserts what that page promises: sign-ups and
log-ins get 503s (never a 500) only until shortly after the promotion, Bearer cart writes never fail,
and no acknowledged account is lost (replication is synchronous).

`make test-cluster` runs this module (`pytest -m cluster`); it is also part of `make test`. The
figures are collected in docs/operations.md.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import environ
import psycopg
import pytest
import redis
from django.conf import settings
from elasticsearch import Elasticsearch
from nats.js.api import ConsumerConfig, DeliverPolicy

from shopcart.eventbus import NatsPublisher
from shopcart.service_urls import split_urls
from tests.support import ROOT, unique
from tests.support.database import own_database
from tests.support.gunicorn import gunicorn, manage

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SCRIPT = ROOT / "devstack" / "cluster.sh"
ARTIFACTS = ROOT / "test-artifacts"
SHOPPERS = 3  # per fault, each with its own cart
PAUSE = 0.05  # between one shopper's adds
BASELINE = 1.5  # seconds of load before the fault
DOWN_FOR = 6.0  # a killed node is restarted this long after the kill
PAUSED_FOR = 15.0  # a hung node gets SIGCONT after this long
AFTER_RETURN = 3.0  # seconds of load after the node is back
RETRY_FOR = 45.0  # a shopper retries one add (same key) for this long at most
ADDS_WITHIN = 10.0  # adds work again this long after the fault at most (Elasticsearch, Redis)
EVENTS_WITHIN = 15.0  # events are stored again this long after a NATS fault at most
HEALTHY_WITHIN = 90.0
PROMOTE_AFTER = 2.0  # the operator (or a watchdog) promotes the PostgreSQL standby this long after the kill
ACCOUNTS_WITHIN = 10.0  # sign-ups and log-ins work again this long after the promotion at most
PASSWORD = "a-Long-password-1"
FIGURES: list[str] = []


# -- the cluster ----------------------------------------------------------------------------------------


def cluster_script(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(SCRIPT), *args]
    env = {**os.environ, "START_TIMEOUT": str(int(HEALTHY_WITHIN))}  # `up` and `wait-healthy` give up first
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(
            f"`{' '.join(['bash', 'devstack/cluster.sh', *args])}` failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


@dataclass
class Cluster:
    env: dict[str, str]
    es: Elasticsearch
    nats: NatsPublisher

    @property
    def database(self) -> dict[str, Any]:
        """The Django database setting of the cluster's PostgreSQL (both nodes, the primary found by libpq)."""
        return environ.Env.db_url_config(self.env["DATABASE_URL"])

    def postgres_primary(self) -> str:
        """pg1 or pg2: the node that is the primary now (roles swap with each failover)."""
        for line in cluster_script("status", check=False).stdout.splitlines():
            if line.startswith("postgres primary: pg"):
                return line.removeprefix("postgres primary: ")
        pytest.fail("no PostgreSQL primary")

    def postgres_address(self, node: str) -> str:
        hosts = str(self.database["HOST"]).split(",")
        ports = str(self.database["PORT"]).split(",")
        index = int(node.removeprefix("pg")) - 1
        return f"{hosts[index]}:{ports[index]}"

    def pid(self, node: str) -> int:
        return int(cluster_script("pid", node).stdout.strip())

    def signal(self, node: str, sig: signal.Signals) -> None:
        os.kill(self.pid(node), sig)

    def start(self, node: str) -> None:
        cluster_script("start", node)

    def wait_healthy(self) -> None:
        cluster_script("wait-healthy", timeout=HEALTHY_WITHIN + 60)

    def carts_primary(self, alias: str) -> str:
        shards = self.es.cat.shards(index=alias, format="json")
        return next(row["node"] for row in shards if row["prirep"] == "p" and row["state"] == "STARTED")

    def hung_node_candidate(self, alias: str) -> str:
        """The node holding the carts' primary, or, if that is the elected master, the one holding its
        replica: a write to the carts blocks on either until the cluster drops it. (A hung master adds an
        election to that and is not measured here; docs/operations.md.)"""
        master = self.es.cat.master(format="json")[0]["node"]
        shards = [row for row in self.es.cat.shards(index=alias, format="json") if row["state"] == "STARTED"]
        primary = next(row["node"] for row in shards if row["prirep"] == "p")
        return primary if primary != master else next(row["node"] for row in shards if row["prirep"] == "r")

    def stream_leader(self, stream: str) -> str:
        async def leader(client: Any) -> str:
            info = await client.jetstream(timeout=5).stream_info(stream)
            return str(info.cluster.leader)

        return self.nats.run(leader, timeout=10)

    def redis_primary(self) -> str:
        for address in split_urls(self.env["REDIS_SENTINELS"]):
            host, _, port = address.rpartition(":")
            sentinel = redis.Redis(host=host, port=int(port), socket_timeout=1, decode_responses=True)
            with contextlib.suppress(redis.RedisError):
                _, primary_port = sentinel.sentinel_get_master_addr_by_name(self.env["REDIS_SENTINEL_MASTER"])
                # devstack/cluster.sh: redisN listens on CLUSTER_REDIS_BASE (6390) + N.
                return f"redis{int(primary_port) - int(os.environ.get('CLUSTER_REDIS_BASE', '6390'))}"
        pytest.fail("no sentinel answered")

    def stream_state(self, stream: str) -> tuple[int, int]:
        async def state(client: Any) -> tuple[int, int]:
            info = await client.jetstream(timeout=5).stream_info(stream)
            return int(info.state.messages), int(info.state.last_seq)

        return self.nats.run(state, timeout=10)

    def stream_messages(self, stream: str, *, after_seq: int) -> list[tuple[float, dict[str, Any]]]:
        """(stored at, event) for every message after `after_seq`."""

        async def read(client: Any) -> list[tuple[float, dict[str, Any]]]:
            js = client.jetstream(timeout=5)
            last_seq = (await js.stream_info(stream)).state.last_seq
            found: list[tuple[float, dict[str, Any]]] = []
            if last_seq <= after_seq:
                return found
            # One ordered push consumer from `after_seq + 1`: far quicker than a GET per message.
            subscription = await js.subscribe(
                "",
                stream=stream,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1),
            )
            try:
                while True:
                    message = await subscription.next_msg(timeout=5)
                    stored_at = message.metadata.timestamp
                    found.append((stored_at.timestamp(), json.loads(message.data)))
                    if message.metadata.sequence.stream >= last_seq:
                        return found
            finally:
                await subscription.unsubscribe()

        return self.nats.run(read, timeout=60)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    already_running = cluster_script("status", check=False).returncode == 0
    if not already_running:
        cluster_script("up")
    env = dict(
        line.removeprefix("export ").split("=", 1) for line in cluster_script("env").stdout.splitlines() if "=" in line
    )
    es = Elasticsearch(hosts=split_urls(env["ELASTICSEARCH_URL"]), request_timeout=10, max_retries=3)
    nats = NatsPublisher(url=env["NATS_URL"], timeout=5)
    try:
        yield Cluster(env=env, es=es, nats=nats)
    finally:
        names = list(es.indices.get(index=f"{settings.ELASTICSEARCH_INDEX_PREFIX}-*", expand_wildcards="all"))
        if names:
            es.indices.delete(index=",".join(names))
        es.close()
        if FIGURES:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "cluster-figures.txt").write_text("\n".join(FIGURES) + "\n")
        if not already_running:
            cluster_script("down")


# -- the shop on it --------------------------------------------------------------------------------------

_SETUP = """
import json
from decimal import Decimal
from accounts.models import User
from accounts.services import issue_token
from cart import events
from cart.documents import ensure_cart_index
from catalog.services import ProductInput, create_product
users = []
for i in range({users}):
    user = User.objects.create_user(email=f"shopper{{i}}@cluster.example.com", password={password!r}, name="Shopper")
    users.append({{"id": user.pk, "email": user.email, "token": issue_token(user=user).auth_token}})
product = create_product(data=ProductInput(sku="CLUSTER-1", name="Cluster test product", description="",
                                           category="Test", price=Decimal("1.00"), currency="USD", stock=1000000))
ensure_cart_index()
events.ensure_stream()
print("SETUP=" + json.dumps({{"users": users, "product": product.id}}))
"""


@dataclass
class Shop:
    ports: list[int]  # the healthy replicas
    faulty_port: int  # a replica whose worker SIGKILLs itself after every acknowledged cart write
    users: list[dict[str, Any]]
    product: str
    stream: str
    carts_alias: str
    database: str  # the replicas' DATABASE_URL, on the cluster's PostgreSQL
    expected_events: int = 0  # every event the stream should hold so far

    def shoppers(self, count: int = SHOPPERS) -> list[dict[str, Any]]:
        taken, self.users = self.users[:count], self.users[count:]
        assert len(taken) == count, "not enough users made in setup"
        return taken


@pytest.fixture(scope="module")
def shop(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("cluster")
    with own_database("cluster", server=cluster.database) as database:
        yield from _shop(cluster, tmp, database)


def _shop(cluster: Cluster, tmp: Path, database: str) -> Iterator[Shop]:
    tag = uuid.uuid4().hex[:8]
    stream = f"CART_CLUSTER_{settings.TEST_RUN_ID}_{tag}".upper()
    env = {
        **os.environ,
        **cluster.env,
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
        "SHOPCART_TEST_RUN_ID": settings.TEST_RUN_ID,
        "DATABASE_URL": database,
        "CART_MAX_QUANTITY_PER_LINE": "5000",
        "CART_EVENTS_STREAM": stream,
        "CART_EVENTS_SUBJECT_PREFIX": f"cluster{settings.TEST_RUN_ID}{tag}.cart",
        "CART_RELAY_INTERVAL": "0.5",
        "CART_RELAY_GRACE_SECONDS": "1",
        # One process per replica: each process learns on its own that an Elasticsearch node hangs (one
        # ELASTICSEARCH_TIMEOUT each), so more processes mean more clients that meet that timeout once.
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "8",
        "GUNICORN_ACCESSLOG": "/dev/null",
    }
    out = manage("shell", "-c", _SETUP.format(users=SHOPPERS * 8, password=PASSWORD), env=env)
    setup = json.loads(out.split("SETUP=")[-1])
    faulty_env = {**env, "CART_FAULT_AFTER_WRITE": "kill", "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2"}
    try:
        with contextlib.ExitStack() as servers:
            ports = [servers.enter_context(gunicorn(env=env, log_path=tmp / f"replica-{i}.log")) for i in (1, 2)]
            faulty = servers.enter_context(gunicorn(env=faulty_env, log_path=tmp / "replica-faulty.log"))
            yield Shop(
                ports=ports,
                faulty_port=faulty,
                users=setup["users"],
                product=setup["product"],
                stream=stream,
                carts_alias=f"{settings.ELASTICSEARCH_INDEX_PREFIX}-carts",
                database=database,
            )
    finally:

        async def drop(client: Any) -> None:
            with contextlib.suppress(Exception):
                await client.jetstream().delete_stream(stream)

        with contextlib.suppress(Exception):
            cluster.nats.run(drop)


# -- shoppers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    started: float  # wall clock, comparable with JetStream's stored-at times
    ended: float
    status: int  # 0: the connection broke (no HTTP answer)


def post_add(port: int, *, token: str, product: str, key: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/user/cart",
            body=json.dumps({"productId": product, "quantity": 1}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def cart_quantity(port: int, *, token: str, product: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/api/user/cart", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, body
    return sum(line["quantity"] for line in body["lines"] if line["productId"] == product)


@dataclass
class Shopper:
    """Adds one item at a time to its own cart, alternating between the replicas; a failed add is retried
    with the same Idempotency-Key until it is answered."""

    user: dict[str, Any]
    shop: Shop
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: int = 0
    unresolved: int = 0
    other: list[str] = field(default_factory=list)
    _turn: int = 0

    def add(self, *, first_port: int | None = None) -> None:
        key = str(uuid.uuid4())
        deadline = time.monotonic() + RETRY_FOR
        port = first_port
        while True:
            if port is None:
                port = self.shop.ports[self._turn % len(self.shop.ports)]
                self._turn += 1
            started = time.time()
            try:
                status = post_add(port, token=self.user["token"], product=self.shop.product, key=key)
            except (OSError, http.client.HTTPException):
                status = 0
            self.attempts.append(Attempt(started, time.time(), status))
            port = None
            if status == 200:
                self.acknowledged += 1
                return
            if status in (0, 409, 502, 503) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            if status in (0, 409, 502, 503):
                self.unresolved += 1
            else:
                self.other.append(f"answered {status}")
            return

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.add()
            time.sleep(PAUSE)


@contextlib.contextmanager
def load(shoppers: list[Shopper]) -> Iterator[None]:
    stop = threading.Event()
    threads = [threading.Thread(target=shopper.run, args=(stop,)) for shopper in shoppers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RETRY_FOR + 30)


# -- what each fault must show --------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    nats: bool  # events must flow again within EVENTS_WITHIN (a NATS node was hit)
    at: float  # wall clock of the fault
    returned_at: float  # wall clock of the node's return (restart or SIGCONT)
    healthy_after: float = 0.0  # seconds from the return until the whole cluster was healthy again


def check_fault(fault: Fault, shop: Shop, cluster: Cluster, shoppers: list[Shopper], *, first_seq: int) -> str:
    attempts = sorted((a for s in shoppers for a in s.attempts), key=lambda a: a.started)
    statuses = Counter(a.status for a in attempts)
    failed = [a for a in attempts if a.status != 200]
    bound = EVENTS_WITHIN if fault.nats else ADDS_WITHIN  # the window in which failures are expected
    problems: list[str] = []

    # Nothing lost, nothing applied twice.
    stored = {s.user["id"]: cart_quantity(shop.ports[0], token=s.user["token"], product=shop.product) for s in shoppers}
    acknowledged = sum(s.acknowledged for s in shoppers)
    for s in shoppers:
        if s.acknowledged != stored[s.user["id"]]:
            problems.append(f"user {s.user['id']}: {s.acknowledged} adds acknowledged, {stored[s.user['id']]} stored")
        if s.unresolved or s.other:
            problems.append(f"user {s.user['id']}: {s.unresolved} adds never answered, others: {s.other[:3]}")
    if statuses[500]:
        problems.append(f"{statuses[500]} answers were HTTP 500")

    # 503s (and broken connections) only in requests that overlap a failover window (after the fault, after
    # the return).
    windows = [(fault.at, fault.at + bound), (fault.returned_at, fault.returned_at + bound)]
    outside = [a for a in failed if not any(a.ended >= start and a.started <= end for start, end in windows)]
    if outside:
        problems.append(f"{len(outside)} failed adds outside the failover windows, first at {outside[0]}")
    outage = (max(a.ended for a in failed) - min(a.started for a in failed)) if failed else 0.0
    after_fault = [a for a in failed if a.started < fault.returned_at]
    restored = 0.0
    if after_fault:
        last_failure = max(a.started for a in after_fault)
        recovered = [a.ended for a in attempts if a.status == 200 and a.started > last_failure]
        restored = (min(recovered) if recovered else time.time()) - fault.at

    # Exactly one event per applied change, once the stream has caught up.
    expected_total = shop.expected_events + sum(stored.values())
    deadline = time.monotonic() + 20  # the relay runs every 0.5 s; NATS is back by now
    while cluster.stream_state(shop.stream)[0] < expected_total and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # anything sent twice would arrive now too
    messages = cluster.stream_messages(shop.stream, after_seq=first_seq)
    shop.expected_events = expected_total
    events_ok = 0
    event_ids = Counter(event["eventId"] for _, event in messages)
    duplicates = sum(count - 1 for count in event_ids.values())
    if duplicates:
        problems.append(f"{duplicates} events on the stream twice")
    for s in shoppers:
        mine = [
            e for _, e in messages if e.get("owner") == f"user-{s.user['id']}" and e.get("productId") == shop.product
        ]
        steps = sorted((e["oldQuantity"], e["newQuantity"]) for e in mine)
        if steps == [(q, q + 1) for q in range(stored[s.user["id"]])]:
            events_ok += len(mine)
        else:
            problems.append(f"user {s.user['id']}: {len(mine)} events for {stored[s.user['id']]} stored adds")

    # Events flow again: the longest gap in stored-at times that ends after the fault.
    times = sorted(t for t, _ in messages)
    gaps = [(b - a, b) for a, b in itertools.pairwise(times) if b > fault.at and a >= fault.at - 1]
    events_restored = (max(gaps)[1] - fault.at) if gaps and max(gaps)[0] > 0.5 else 0.0
    if restored > ADDS_WITHIN:
        problems.append(f"adds work again only {restored:.1f}s after the fault (bound {ADDS_WITHIN:.0f}s)")
    if fault.nats and events_restored > EVENTS_WITHIN:
        problems.append(f"events stored again only {events_restored:.1f}s after the fault (bound {EVENTS_WITHIN:.0f}s)")

    line = (
        f"FAULT {fault.name}: adds ok={acknowledged}, 503={statuses[503]}, broken={statuses[0]}, 500={statuses[500]}, "
        f"outage={outage:.1f}s, restored in {restored:.1f}s (events in {events_restored:.1f}s), "
        f"healthy {fault.healthy_after:.1f}s after return, events {events_ok}/{sum(stored.values())} unique"
    )
    FIGURES.append(line)
    ARTIFACTS.mkdir(exist_ok=True)
    timeline = {
        "returned_at": round(fault.returned_at - fault.at, 2),
        "failed": [(round(a.started - fault.at, 2), round(a.ended - fault.at, 2), a.status) for a in failed],
        "problems": problems,
    }
    (ARTIFACTS / f"cluster-{fault.name}.json").write_text(json.dumps(timeline, indent=1))
    assert not problems, line + "\n" + "\n".join(problems)
    return line


def run_fault(
    name: str,
    shop: Shop,
    cluster: Cluster,
    capsys: pytest.CaptureFixture[str],
    *,
    inject: Callable[[], None],
    restore: Callable[[], None],
    hold: float,
    during: Callable[[], None] | None = None,
    nats: bool = False,
    extra: tuple[Shopper, ...] = (),
) -> None:
    cluster.wait_healthy()
    first_seq = cluster.stream_state(shop.stream)[1]
    shoppers = [Shopper(user=user, shop=shop) for user in shop.shoppers()]
    with load(shoppers):
        time.sleep(BASELINE)
        at = time.time()
        inject()
        try:
            if during:
                during()
            time.sleep(max(0.0, at + hold - time.time()))
        finally:
            restore()  # also when `during` failed: the next test needs the whole cluster
        returned_at = time.time()
        time.sleep(AFTER_RETURN)
    cluster.wait_healthy()
    fault = Fault(name=name, nats=nats, at=at, returned_at=returned_at, healthy_after=time.time() - returned_at)
    line = check_fault(fault, shop, cluster, [*shoppers, *extra], first_seq=first_seq)
    with capsys.disabled():
        print(f"\n{line}")


# -- the faults ------------------------------------------------------------------------------------------


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_readyz_lists_every_node_of_each_cluster(shop: Shop, cluster: Cluster) -> None:
    status, body = readyz(shop.ports[0])
    assert status == 200, body
    checks = body["checks"]
    assert checks["elasticsearch"]["nodes"] == dict.fromkeys(split_urls(cluster.env["ELASTICSEARCH_URL"]), "up")
    assert checks["elasticsearch"]["cluster_nodes"] == 3
    assert checks["nats"]["nodes"] == dict.fromkeys(split_urls(cluster.env["NATS_URL"]), "up")
    assert checks["redis"]["sentinels"] == dict.fromkeys(split_urls(cluster.env["REDIS_SENTINELS"]), "up")
    assert list(checks["redis"]["replicas"].values()) == ["up"]
    assert checks["redis"]["primary"] not in checks["redis"]["replicas"]
    nodes = [cluster.postgres_address(node) for node in ("pg1", "pg2")]
    assert checks["database"]["nodes"] == dict.fromkeys(nodes, "up")
    primary = cluster.postgres_address(cluster.postgres_primary())
    assert checks["database"]["primary"] == primary
    assert checks["database"]["standbys"] == [node for node in nodes if node != primary]


def test_sigkill_of_the_elasticsearch_node_holding_the_carts_primary(
    shop: Shop, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    node = cluster.carts_primary(shop.carts_alias)
    address = split_urls(cluster.env["ELASTICSEARCH_URL"])[int(node.removeprefix("es")) - 1]

    def readyz_names_the_dead_node() -> None:
        """The replica stays ready (the shop works) and /readyz says which node is gone."""
        status, body = readyz(shop.ports[1])
        assert status == 200, body
        assert body["checks"]["elasticsearch"]["nodes"][address] == "down", body

    run_fault(
        "es-kill-primary",
        shop,
        cluster,
        capsys,
        inject=lambda: cluster.signal(node, signal.SIGKILL),
        restore=lambda: cluster.start(node),
        hold=DOWN_FOR,
        during=readyz_names_the_dead_node,
    )


def test_sigkill_of_the_nats_stream_leader(shop: Shop, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    node = cluster.stream_leader(shop.stream)
    run_fault(
        "nats-kill-leader",
        shop,
        cluster,
        capsys,
        inject=lambda: cluster.signal(node, signal.SIGKILL),
        restore=lambda: cluster.start(node),
        hold=DOWN_FOR,
        nats=True,
    )


def test_sigkill_of_the_redis_primary(shop: Shop, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    node = cluster.redis_primary()
    run_fault(
        "redis-kill-primary",
        shop,
        cluster,
        capsys,
        inject=lambda: cluster.signal(node, signal.SIGKILL),
        restore=lambda: cluster.start(node),
        hold=DOWN_FOR,
    )


def test_sigstop_of_an_elasticsearch_node_and_the_nats_leader(
    shop: Shop, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hung, not dead: the processes keep their sockets open and answer nothing for 15 s."""
    es_node = cluster.hung_node_candidate(shop.carts_alias)
    nats_node = cluster.stream_leader(shop.stream)

    def pause() -> None:
        cluster.signal(es_node, signal.SIGSTOP)
        cluster.signal(nats_node, signal.SIGSTOP)

    def resume() -> None:
        cluster.signal(es_node, signal.SIGCONT)
        cluster.signal(nats_node, signal.SIGCONT)

    try:
        run_fault("es+nats-sigstop", shop, cluster, capsys, inject=pause, restore=resume, hold=PAUSED_FOR, nats=True)
    finally:
        with contextlib.suppress(Exception):
            resume()


def test_sigkill_of_an_app_worker_right_after_its_cart_write(
    shop: Shop, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """The faulty replica's worker dies right after Elasticsearch acknowledged its write (the test-only
    CART_FAULT_AFTER_WRITE=kill hook), before answering or sending the event; the shopper, left without
    an answer, retries with the same Idempotency-Key on a healthy replica."""
    victim = Shopper(user=shop.shoppers(1)[0], shop=shop)

    def kill_workers() -> None:
        for _ in range(3):
            victim.add(first_port=shop.faulty_port)
            time.sleep(1.5)  # gunicorn's master brings up a new worker

    run_fault(
        "worker-kill",
        shop,
        cluster,
        capsys,
        inject=lambda: None,
        restore=lambda: None,
        hold=0.0,
        during=kill_workers,
        extra=(victim,),
    )
    broken = [a for a in victim.attempts if a.status == 0]
    assert len(broken) == 3, f"the faulty replica's worker should have died 3 times: {victim.attempts}"
    assert victim.acknowledged == cart_quantity(shop.ports[0], token=victim.user["token"], product=shop.product) == 3


# -- the database --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountAttempt:
    what: str  # "sign-up" or "log-in"
    started: float
    ended: float
    status: int  # 0: the connection broke (no HTTP answer)
    email: str


def post_json(port: int, path: str, body: dict[str, Any]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@dataclass
class Newcomers:
    """Sign-ups (each a new address) and log-ins (of users no shopper uses), in turn, through the replicas:
    the requests that need the database."""

    shop: Shop
    members: list[dict[str, Any]]
    attempts: list[AccountAttempt] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        for turn in itertools.count():
            if stop.is_set():
                return
            port = self.shop.ports[turn % len(self.shop.ports)]
            if turn % 2:
                what, email = "log-in", self.members[turn % len(self.members)]["email"]
                path = "/api/login"
                body = {"email": email, "password": PASSWORD}
            else:
                what, email = "sign-up", f"{unique('newcomer')}@cluster.example.com"
                path = "/api/register"
                body = {"name": "Newcomer", "email": email, "password": PASSWORD}
            started = time.time()
            try:
                status = post_json(port, path, body)
            except (OSError, http.client.HTTPException):
                status = 0
            self.attempts.append(AccountAttempt(what, started, time.time(), status, email))
            time.sleep(PAUSE)


def accounts_in(database_url: str, emails: list[str]) -> set[str]:
    """Which of `emails` have an account, asked of the primary."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT email FROM accounts_user WHERE email = ANY(%s)", (emails,)).fetchall()
    return {row[0] for row in rows}


def test_sigkill_of_the_postgresql_primary(shop: Shop, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """The primary dies while shoppers add to their carts and newcomers sign up and log in; the operator
    promotes the standby (docs/operations.md) and later rebuilds the old primary as the new standby."""
    old_primary = cluster.postgres_primary()
    standby = "pg2" if old_primary == "pg1" else "pg1"
    newcomers = Newcomers(shop=shop, members=shop.shoppers(2))
    killed: list[float] = []
    promoted: list[float] = []

    def kill() -> None:
        killed.append(time.time())
        cluster.signal(old_primary, signal.SIGKILL)

    def promote_like_an_operator() -> None:
        time.sleep(PROMOTE_AFTER)  # the operator sees /readyz and the alert, and checks the primary is gone
        cluster_script("promote", standby)
        promoted.append(time.time())
        expected = {"nodes": {cluster.postgres_address(old_primary): "down", cluster.postgres_address(standby): "up"}}
        deadline = time.monotonic() + ACCOUNTS_WITHIN
        while True:  # /readyz names the new primary and the dead node once the replica has reconnected
            status, body = readyz(shop.ports[0])
            database = body["checks"]["database"]
            if status == 200 and database.get("nodes") == expected["nodes"]:
                assert database["primary"] == cluster.postgres_address(standby), body
                return
            assert time.monotonic() < deadline, body
            time.sleep(0.2)

    stop = threading.Event()
    thread = threading.Thread(target=newcomers.run, args=(stop,))
    thread.start()
    try:
        run_fault(
            "postgres-kill-primary",
            shop,
            cluster,
            capsys,
            inject=kill,
            restore=lambda: cluster_script("rebuild-standby", old_primary),
            hold=DOWN_FOR,
            during=promote_like_an_operator,
        )
    finally:
        stop.set()
        thread.join(timeout=RETRY_FOR + 30)

    assert promoted, "the standby was not promoted"
    attempts = sorted(newcomers.attempts, key=lambda a: a.started)
    statuses = Counter((a.what, a.status) for a in attempts)
    failed = [a for a in attempts if a.status not in (200, 201)]
    problems = [f"{a.what} {a.email} answered {a.status}" for a in failed if a.status != 503]
    # A 503 only in requests that overlap the window from the kill to ACCOUNTS_WITHIN after the promotion.
    late = [a for a in failed if a.started > promoted[0] + ACCOUNTS_WITHIN or a.ended < killed[0]]
    if late:
        problems.append(f"{len(late)} failed sign-ups or log-ins outside the window, first {late[0]}")
    if not any(a.status == 503 for a in failed):
        problems.append("no sign-up or log-in met the outage")
    last_failure = max((a.started for a in failed), default=promoted[0])
    recovered = [a.ended for a in attempts if a.status in (200, 201) and a.started > last_failure]
    # From the promotion to the first success after the last failure (0 when that one was already under way).
    restored = max(0.0, (min(recovered) if recovered else time.time()) - promoted[0])
    if restored > ACCOUNTS_WITHIN:
        problems.append(f"sign-ups and log-ins work again only {restored:.1f}s after the promotion")
    # Synchronous replication: every account acknowledged (201) is on the new primary.
    acknowledged = [a.email for a in attempts if a.what == "sign-up" and a.status == 201]
    found = accounts_in(shop.database, acknowledged)
    if lost := sorted(set(acknowledged) - found):
        problems.append(f"{len(lost)} acknowledged accounts lost, e.g. {lost[:3]}")

    line = (
        f"FAULT postgres-kill-primary (accounts): sign-ups ok={statuses[('sign-up', 201)]}, "
        f"503={statuses[('sign-up', 503)]}; log-ins ok={statuses[('log-in', 200)]}, 503={statuses[('log-in', 503)]}; "
        f"500={sum(count for (_, status), count in statuses.items() if status == 500)}; "
        f"failing for {(max(a.ended for a in failed) - min(a.started for a in failed)) if failed else 0:.1f}s; "
        f"restored {restored:.1f}s after the promotion ({promoted[0] - killed[0]:.1f}s after the kill); "
        f"acknowledged accounts {len(found)}/{len(acknowledged)} found"
    )
    FIGURES.append(line)
    with capsys.disabled():
        print(f"\n{line}")
    assert not problems, line + "\n" + "\n".join(problems)
    assert cluster.postgres_primary() == standby
