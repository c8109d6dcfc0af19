"""docker-compose.cluster.yml, for real: 3 Elasticsearch nodes, 3 NATS servers, Redis primary + replica
with 3 sentinels, Postgres, 3 web replicas and nginx, brought up through podman-compose on Podman
(devstack/compose.py, stand-ins for the official images, docs/adr/0007) and used only through nginx on a
loopback port: every node up and the clusters green, every replica seeing every node, and one
Elasticsearch container killed while shoppers add to their carts, with no acknowledged add lost.

Part of `make test-compose` and `make test`; the node faults themselves are measured in depth by
test_cluster.py on the local cluster."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.compose import PORT, ComposeStack, health, podman, replica_of, running_stack
from tests.support.polling import wait_for

pytestmark = [pytest.mark.compose, pytest.mark.slow]

PASSWORD = "cluster-Plum-orchard-91"
SHOPPERS = 3
LOAD_BEFORE = 1.5  # seconds of adds before the kill
LOAD_AFTER = 5.0  # and after it
RETRY_FOR = 45.0  # one add is retried with its key for this long at most


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[compose] {line}")


@pytest.fixture(scope="module")
def stack(compose_images: None) -> Iterator[ComposeStack]:
    with running_stack(cluster=True, port=PORT + 1) as stack:
        stack.compose("exec", "-T", "web", "python", "manage.py", "seed")
        yield stack


def test_every_node_is_up_and_every_replica_sees_every_node(
    stack: ComposeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    states = {c["Name"]: (c["State"]["Status"], health(c)) for c in stack.containers()}
    serving = {name: state for name, state in states.items() if not name.endswith("_migrate_1")}
    assert len(serving) == 16, states
    assert set(serving.values()) == {("running", "healthy")}, states

    answers: dict[str, dict[str, Any]] = {}
    replicas = {container["Config"]["Hostname"] for container in stack.containers("web")}

    def every_replica_answered() -> bool:
        reply = stack.call("GET", "/readyz")
        assert reply.status == 200, reply.text
        answers[replica_of(reply)] = reply.json()
        return set(answers) == replicas

    wait_for(every_replica_answered, timeout=30, interval=0)
    for body in answers.values():
        checks = body["checks"]
        assert body["status"] == "ready", body
        assert checks["elasticsearch"]["cluster"] == "green", checks
        assert checks["elasticsearch"]["cluster_nodes"] == 3, checks
        assert set(checks["elasticsearch"]["nodes"].values()) == {"up"}, checks
        assert len(checks["elasticsearch"]["nodes"]) == 3, checks
        assert checks["nats"]["nodes"] == {f"nats://nats{i}:4222": "up" for i in (1, 2, 3)}, checks
        assert checks["redis"]["sentinels"] == {f"sentinel{i}:26379": "up" for i in (1, 2, 3)}, checks
        assert checks["redis"]["primary"] == "redis-primary:6379", checks
        assert checks["redis"]["replicas"] == {"redis-replica:6379": "up"}, checks
    report(
        capsys,
        f"docker-compose.cluster.yml up with --scale web=3 in {stack.up_took:.0f}s (started {stack.up_rounds}): "
        f"{len(serving)} containers "
        f"running and healthy; each of the 3 replicas' /readyz: Elasticsearch green with 3 nodes, 3 NATS "
        f"servers, 3 sentinels, the primary and its replica, all up",
    )


@dataclass
class Shopper:
    """Adds one item at a time to its own cart through nginx, each add with an Idempotency-Key, retried
    with the same key after a 502/503 or a broken connection until it is answered."""

    stack: ComposeStack
    token: str
    products: list[str]
    acknowledged: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)  # every attempt's answer; 0: no answer
    unanswered: int = 0

    def add(self, product: str) -> None:
        key = uuid.uuid4().hex
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                reply = self.stack.call(
                    "POST",
                    "/api/user/cart",
                    json_body={"productId": product, "quantity": 1},
                    token=self.token,
                    headers={"Idempotency-Key": key},
                    timeout=30,
                )
                status = reply.status
            except (OSError, http.client.HTTPException):
                status = 0
            self.statuses[status] += 1
            if status == 200:
                self.acknowledged[product] += 1
                return
            if status not in (0, 502, 503) or time.monotonic() > deadline:
                self.unanswered += 1
                return
            time.sleep(0.2)

    def run(self, stop: threading.Event) -> None:
        turn = 0
        while not stop.is_set():
            self.add(self.products[turn % len(self.products)])
            turn += 1
            time.sleep(0.05)

    def stored(self) -> Counter[str]:
        reply = self.stack.call("GET", "/api/user/cart", token=self.token)
        assert reply.status == 200, reply.text
        return Counter({line["productId"]: line["quantity"] for line in reply.json()["lines"]})


def new_shopper(stack: ComposeStack, products: list[str]) -> Shopper:
    email = f"cluster-{uuid.uuid4().hex[:10]}@example.com"
    registered = stack.call(
        "POST", "/api/register", json_body={"name": "Shopper", "email": email, "password": PASSWORD}
    )
    assert registered.status == 201, registered.text
    login = stack.call("POST", "/api/login", json_body={"email": email, "password": PASSWORD})
    assert login.status == 200, login.text
    return Shopper(stack, login.json()["auth_token"], products)


def carts_primary(stack: ComposeStack) -> str:
    """The Elasticsearch node holding the carts index's primary shard, asked inside a node's container."""
    shards = podman(
        "exec", f"{stack.project}_es1_1", "curl", "-fsS", "http://127.0.0.1:9200/_cat/shards/shopcart-carts?format=json"
    ).stdout
    return next(shard["node"] for shard in json.loads(shards) if shard["prirep"] == "p")


def test_an_elasticsearch_node_killed_under_adds_loses_no_acknowledged_add(
    stack: ComposeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = stack.call("GET", "/api/products?page_size=50")
    assert listing.status == 200, listing.text
    products = [item["id"] for item in listing.json()["items"] if item["stock"] >= 50][:5]
    assert len(products) == 5, listing.json()
    shoppers = [new_shopper(stack, products) for _ in range(SHOPPERS)]
    node = carts_primary(stack)
    victim = f"{stack.project}_{node}_1"

    stop = threading.Event()
    threads = [threading.Thread(target=shopper.run, args=(stop,)) for shopper in shoppers]
    for thread in threads:
        thread.start()
    try:
        time.sleep(LOAD_BEFORE)
        stack.kill(victim)
        time.sleep(LOAD_AFTER)
        during = stack.call("GET", "/readyz")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RETRY_FOR + 30)

    assert stack.container(victim)["State"]["Status"] == "exited"
    assert during.status == 200, during.text  # the shop stays ready on the two other nodes
    assert f"http://{node}:9200" in during.json()["checks"]["elasticsearch"]["nodes"]
    assert during.json()["checks"]["elasticsearch"]["nodes"][f"http://{node}:9200"] == "down", during.json()
    statuses: Counter[int] = sum((shopper.statuses for shopper in shoppers), Counter())
    assert 500 not in statuses, statuses
    for shopper in shoppers:
        assert shopper.unanswered == 0, shopper.statuses
        assert shopper.stored() == shopper.acknowledged, (shopper.stored(), shopper.acknowledged)
    acknowledged = sum(sum(shopper.acknowledged.values()) for shopper in shoppers)
    assert acknowledged > 0
    report(
        capsys,
        f"{victim} (the carts' primary) SIGKILLed under {SHOPPERS} shoppers' adds: {acknowledged} acknowledged, "
        f"every one stored, none twice; answers {dict(sorted(statuses.items()))}; /readyz ready, naming {node} down",
    )
