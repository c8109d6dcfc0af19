"""Scale-out: three gunicorn replicas behind a real nginx (devstack/replicas.sh), reached over loopback
only. It must not matter which replica answers: sessions, CSRF, tokens, throttling and carts are shared;
a replica that is stopped drains, one that is killed costs only its in-flight requests, and one that
comes back rejoins the rotation.

The replicas are subprocesses: they cannot see pytest-django's test database, so they share a database of
their own (tests/support/database.py), and every user is created through the API. They share this run's
Elasticsearch index prefix and cache prefix (SHOPCART_TEST_RUN_ID), so products created here are theirs.
Ports 18000 (nginx) and 18101-18103 stay clear of `make run` (8000, 8101-...); SCALEOUT_PORT moves them
(nginx on it, the replicas from +101), for a second run on the same machine.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from django.conf import settings

from accounts import tokens
from cart import services as cart_services
from catalog import indexes
from catalog import services as catalog_services
from catalog.services import ProductInput
from tests.support import ROOT
from tests.support import http as loopback
from tests.support.cart import wipe_cart
from tests.support.database import own_database
from tests.support.http import Browser, Reply, form_token

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "devstack" / "replicas.sh"
REPLICAS = 3
NGINX_PORT = int(os.environ.get("SCALEOUT_PORT", "18000"))
REPLICA_BASE_PORT = NGINX_PORT + 100
NAMES = {f"replica-{i}" for i in range(1, REPLICAS + 1)}
PASSWORD = "plum-orchard-91"
GRACEFUL_TIMEOUT = 10
# Failed log-ins per client address for the replicas: low, so the test reaches it quickly.
ADDRESS_LIMIT = 8


# -- HTTP over loopback, to this module's nginx --------------------------------------------------------


def call(method: str, path: str, **kwargs: Any) -> Reply:
    return loopback.call(method, path, **{"port": NGINX_PORT, **kwargs})


# -- the replica set ---------------------------------------------------------------------------------


@dataclass
class ReplicaSet:
    folder: Path
    env: dict[str, str]

    def script(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            ["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"replicas.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"

    def port(self, i: int) -> int:
        return REPLICA_BASE_PORT + i

    def pid(self, i: int) -> int | None:
        pidfile = self.folder / f"replica-{i}.pid"
        if not pidfile.exists():
            return None
        pid = int(pidfile.read_text())
        return pid if _alive(pid) else None

    def kill(self, i: int) -> None:
        """SIGKILL the whole replica (master and workers), as an OOM kill or `docker kill` would."""
        pid = self.pid(i)
        assert pid is not None, f"replica-{i} is not running"
        assert os.getpgid(pid) == pid, "each replica runs in its own process group"
        os.killpg(pid, signal.SIGKILL)
        assert wait_until(lambda: not _alive(pid), timeout=5), f"replica-{i} survived SIGKILL"

    def ensure_running(self) -> None:
        """Restart any replica a test stopped, and wait until nginx sends it requests again (it tries a
        failed replica again only after fail_timeout)."""
        restarted = [i for i in range(1, REPLICAS + 1) if self.pid(i) is None]
        for i in restarted:
            self.script("start", str(i))
        if restarted:
            assert wait_until(lambda: set(served_by_over("/healthz", REPLICAS)) == NAMES, timeout=8, interval=0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie waiting to be reaped is gone for our purposes
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaSet]:
    folder = tmp_path_factory.mktemp("replicas")
    with own_database("scaleout") as database:
        yield from _replica_set(folder, database)


def _replica_set(folder: Path, database: str) -> Iterator[ReplicaSet]:
    env = {
        # No SECRET_KEY: the replicas find their key as `make run` does, in a key file the first creates.
        **{name: value for name, value in os.environ.items() if name != "SECRET_KEY"},
        "SECRET_KEY_FILE": str(folder / "secret_key"),
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
        "SHOPCART_TEST_RUN_ID": settings.TEST_RUN_ID,
        "DATABASE_URL": database,
        "REPLICAS_DIR": str(folder),
        "HOST": "127.0.0.1",
        "PORT": str(NGINX_PORT),
        "REPLICA_BASE_PORT": str(REPLICA_BASE_PORT),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        "START_TIMEOUT": "60",
        "LOGIN_ADDRESS_FAILURE_LIMIT": str(ADDRESS_LIMIT),
    }
    replica_set = ReplicaSet(folder, env)
    try:
        replica_set.script("up", str(REPLICAS))
        yield replica_set
    finally:
        subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture(autouse=True)
def _all_running(replicas: ReplicaSet) -> None:
    """Each test starts with every replica up (a test before it may have stopped one)."""
    replicas.ensure_running()


@pytest.fixture(scope="module")
def products(replicas: ReplicaSet) -> list[str]:
    """Products in this run's catalog, which the replicas share; stock well above what the tests add.
    The cart index is created here too, as `manage.py seed` does before a deployment serves traffic."""
    indexes.ensure_product_index()
    cart_services.ensure_cart_index()
    ids = []
    for _ in range(3):
        product = catalog_services.create_product(
            data=ProductInput(
                sku=f"SCALE-{uuid.uuid4().hex[:8]}",
                name="Scale-out Widget",
                description="A widget for the scale-out tests.",
                category="Kitchen",
                price=Decimal("2.50"),
                currency="USD",
                stock=1000,
            )
        )
        ids.append(product.id)
    return ids


def new_user(tag: str) -> str:
    email = f"{tag}-{uuid.uuid4().hex[:10]}@example.com"
    reply = call("POST", "/api/register", json_body={"name": tag.title(), "email": email, "password": PASSWORD})
    assert reply.status == 201, reply.text
    # The replicas' database is their own, so their user ids start again at 1; the carts index is this
    # run's, shared with the other tests, whose users had those ids too: start from an empty cart.
    wipe_cart(f"user-{reply.json()['id']}")
    return email


def token_for(email: str) -> str:
    reply = call("POST", "/api/login", json_body={"email": email, "password": PASSWORD})
    assert reply.status == 200, reply.text
    return reply.json()["auth_token"]


def cart_quantities(token: str) -> dict[str, int]:
    reply = call("GET", "/api/user/cart", token=token)
    assert reply.status == 200, reply.text
    return {line["productId"]: line["quantity"] for line in reply.json()["lines"]}


def served_by_over(path: str, count: int, **kwargs: Any) -> Counter[str]:
    replies = [call("GET", path, **kwargs) for _ in range(count)]
    assert all(reply.status == 200 for reply in replies), [reply.status for reply in replies]
    return Counter(reply.served_by for reply in replies)


# -- spread and shared state -------------------------------------------------------------------------


def test_requests_spread_over_every_replica(replicas: ReplicaSet, products: list[str]) -> None:
    spread = served_by_over("/healthz", 12)
    assert set(spread) == NAMES, spread
    assert min(spread.values()) >= 3, f"round-robin should be even: {spread}"
    # Every replica answers a catalog read the same way (one index, one shared cache).
    bodies = {}
    for _ in range(REPLICAS):
        reply = call("GET", f"/api/products/{products[0]}")
        assert reply.status == 200, reply.text
        bodies[reply.served_by] = reply.json()
    assert set(bodies) == NAMES
    assert len({json.dumps(body, sort_keys=True) for body in bodies.values()}) == 1


def test_one_session_works_on_every_replica(replicas: ReplicaSet) -> None:
    email = new_user("browser")
    browser = Browser(NGINX_PORT)
    login_page = browser.go("GET", "/accounts/login/")
    token = form_token(login_page)
    # The CSRF cookie and form token come from one replica, the round-robin sends the POST to the next.
    login = browser.go(
        "POST", "/accounts/login/", form={"csrfmiddlewaretoken": token, "email": email, "password": PASSWORD}
    )
    assert login.status == 302, login.text
    assert login.served_by != login_page.served_by
    assert "sessionid" in browser.cookies

    # Browsing: every replica knows the session (it lives in Redis) and shows who is logged in.
    pages = [browser.go("GET", "/cart/") for _ in range(2 * REPLICAS)]
    assert {page.served_by for page in pages} == NAMES
    assert all(page.status == 200 and "Browser" in page.text and "Log out" in page.text for page in pages)

    # A CSRF-protected form rendered by one replica is accepted by another.
    page = browser.go("GET", "/cart/")
    logout = browser.go("POST", "/accounts/logout/", form={"csrfmiddlewaretoken": form_token(page)})
    assert logout.status == 302, logout.text
    assert logout.served_by != page.served_by
    after = [browser.go("GET", "/cart/") for _ in range(REPLICAS)]
    assert {reply.served_by for reply in after} == NAMES
    assert all("Log out" not in reply.text and "Log in" in reply.text for reply in after)


def test_one_token_works_on_every_replica(replicas: ReplicaSet) -> None:
    token = token_for(new_user("token"))
    replies = [call("GET", "/api/me", token=token) for _ in range(2 * REPLICAS)]
    assert all(reply.status == 200 for reply in replies), [reply.text for reply in replies]
    assert {reply.served_by for reply in replies} == NAMES
    # Revoked through one replica, refused by all of them.
    assert call("POST", "/api/logout", token=token).status == 204
    refused = [call("GET", "/api/me", token=token) for _ in range(REPLICAS)]
    assert [reply.status for reply in refused] == [401] * REPLICAS
    assert {reply.served_by for reply in refused} == NAMES


# The key that signed everything for `make run` until it was generated per checkout: anyone could read it.
REPOSITORY_DEFAULT_KEY = "django-insecure-local-dev-only-shopcart-secret-key-change-me"


def _resigned(token: str, secret: str) -> str:
    """The token with a new id, signed again with `secret`: what someone holding the secret can mint."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode({**claims, "jti": uuid.uuid4().hex}, tokens.signing_key(secret), algorithm=tokens.ALGORITHM)


def test_every_replica_signs_with_one_generated_key_that_is_not_in_git(replicas: ReplicaSet) -> None:
    key_file = replicas.folder / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert key_file.stat().st_mode & 0o077 == 0, "the key file is for its owner only"
    tracked = subprocess.run(["git", "grep", "-qF", key], cwd=ROOT, capture_output=True, check=False)
    assert tracked.returncode == 1, "the served key is in a tracked file"

    token = token_for(new_user("minted"))
    # Minted with the generated key: accepted by every replica, so it is the key they all serve with.
    minted = [call("GET", "/api/me", token=_resigned(token, key)) for _ in range(REPLICAS)]
    assert [reply.status for reply in minted] == [200] * REPLICAS, [reply.text for reply in minted]
    assert {reply.served_by for reply in minted} == NAMES
    # Minted with the key that used to be in the repository: refused everywhere.
    forged = [call("GET", "/api/me", token=_resigned(token, REPOSITORY_DEFAULT_KEY)) for _ in range(REPLICAS)]
    assert [reply.status for reply in forged] == [401] * REPLICAS


def test_a_body_nginx_refuses_is_still_a_json_error_on_the_api(replicas: ReplicaSet) -> None:
    two_mib = {"name": "x" * (2 * 1024 * 1024), "email": "big@example.com", "password": PASSWORD}
    for path in ("/api/register", "/api/login", "/api/user/cart"):
        reply = call("POST", path, json_body=two_mib)
        assert reply.status == 413, (path, reply.status)
        assert reply.headers["content-type"].startswith("application/json"), reply.headers
        assert reply.json()["error"]["code"] == "payload_too_large"
    # Between the app's limit and nginx's, the app answers, in the same shape.
    half_mib = call("POST", "/api/register", json_body={"name": "x" * (512 * 1024)})
    assert half_mib.status == 413
    assert half_mib.json()["error"]["code"] == "payload_too_large"
    assert half_mib.served_by in NAMES


def test_a_form_nginx_refuses_gets_the_shops_own_page(replicas: ReplicaSet) -> None:
    """Past nginx's client_max_body_size a page's form gets the shop's 413 page, header and all, saying how
    to get the typing back (issue 17), not nginx's bare "Request Entity Too Large"."""
    huge = {"sku": "BIG-1", "name": "Big", "description": "x" * (2 * 1024 * 1024)}
    reply = call("POST", "/admin/catalog/products/add/", form=huge)
    assert reply.status == 413
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.served_by in NAMES  # the app's page, asked for by nginx
    page = reply.text
    assert "<h1>Request too large</h1>" in page
    assert "your browser still has what you typed" in page
    assert 'role="search"' in page  # the shop's header


def test_nginx_does_not_announce_its_version(replicas: ReplicaSet) -> None:
    for path in ("/healthz", "/nope"):
        assert call("GET", path).headers["server"] == "nginx"


def test_login_throttling_counts_across_replicas(replicas: ReplicaSet) -> None:
    # Our own client addresses (nginx passes them on in X-Forwarded-For), so no other test shares them.
    guesser, bystander = f"127.0.{uuid.uuid4().int % 200 + 20}.7", f"127.0.{uuid.uuid4().int % 200 + 20}.8"
    victim, other, stranger = new_user("victim"), new_user("other"), new_user("stranger")
    limit = settings.LOGIN_FAILURE_LIMIT
    failures = [
        call("POST", "/api/login", json_body={"email": victim, "password": "wrong"}, source_ip=guesser)
        for _ in range(limit)
    ]
    assert [reply.status for reply in failures] == [401] * limit
    assert {reply.served_by for reply in failures} == NAMES, "the failures should land on every replica"

    # Whichever replica answers next knows the count: the account is blocked, even with its password,
    # from the guesser's address and any other it never logged in from...
    for source in (guesser, bystander):
        blocked = call("POST", "/api/login", json_body={"email": victim, "password": PASSWORD}, source_ip=source)
        assert blocked.status == 429, blocked.text
        assert int(blocked.headers["retry-after"]) >= 1
    # ... but a neighbour behind the guesser's address logs in with their own password.
    allowed = call("POST", "/api/login", json_body={"email": other, "password": PASSWORD}, source_ip=guesser)
    assert allowed.status == 200, allowed.text

    # The address limit (ADDRESS_LIMIT for these replicas) counts across replicas too ...
    for number in range(ADDRESS_LIMIT - limit):
        call("POST", "/api/login", json_body={"email": f"x{number}@example.com", "password": "x"}, source_ip=guesser)
    refused = call("POST", "/api/login", json_body={"email": stranger, "password": PASSWORD}, source_ip=guesser)
    assert refused.status == 429, refused.text
    # ... and is the client's, not nginx's: another client logs in as usual.
    allowed = call("POST", "/api/login", json_body={"email": stranger, "password": PASSWORD}, source_ip=bystander)
    assert allowed.status == 200, allowed.text


def test_concurrent_adds_through_different_replicas_lose_nothing(replicas: ReplicaSet, products: list[str]) -> None:
    token = token_for(new_user("shopper"))
    product = products[0]
    threads, adds_per_thread = 6, 8  # 48 items: under the per-line maximum of 99

    def add_many(_: int) -> list[Reply]:
        return [
            call("POST", "/api/user/cart", json_body={"productId": product, "quantity": 1}, token=token)
            for _ in range(adds_per_thread)
        ]

    with ThreadPoolExecutor(threads) as pool:
        replies = [reply for batch in pool.map(add_many, range(threads)) for reply in batch]

    acknowledged = [reply for reply in replies if reply.status == 200]
    # 409 means "busy, nothing changed"; anything else is a bug.
    assert all(reply.status in (200, 409) for reply in replies), Counter(reply.status for reply in replies)
    assert len(acknowledged) >= len(replies) // 2, Counter(reply.status for reply in replies)
    assert {reply.served_by for reply in acknowledged} == NAMES
    final = call("GET", "/api/user/cart", token=token).json()
    assert final["itemCount"] == len(acknowledged)
    assert {line["productId"]: line["quantity"] for line in final["lines"]} == {product: len(acknowledged)}
    # Each acknowledged summary was one of the versions written: all different, ending at the total.
    assert sorted(reply.json()["itemCount"] for reply in acknowledged) == list(range(1, len(acknowledged) + 1))


# -- failures: kill, drain, restart ------------------------------------------------------------------


@dataclass
class Outcome:
    method: str
    key: str  # what was written: "<token index>:<product>"
    status: int  # 0: no HTTP answer at all
    served_by: str
    finished: float


def run_load(
    *, tokens: list[str], products: list[str], readers: int, stop: threading.Event, max_adds: int
) -> tuple[list[Outcome], threading.Thread]:
    """Writers (one per token) add 1 item at a time, cycling over the products; readers fetch their cart.
    Runs until `stop` is set or `max_adds` per line; returns the shared outcome list and a joiner."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def record(outcome: Outcome) -> None:
        with lock:
            outcomes.append(outcome)

    def writer(index: int) -> None:
        for n in range(max_adds * len(products)):
            if stop.is_set():
                return
            product = products[n % len(products)]
            try:
                reply = call(
                    "POST", "/api/user/cart", json_body={"productId": product, "quantity": 1}, token=tokens[index]
                )
                status, served_by = reply.status, reply.served_by
            except OSError:
                status, served_by = 0, ""
            record(Outcome("POST", f"{index}:{product}", status, served_by, time.monotonic()))

    def reader(index: int) -> None:
        while not stop.is_set():
            try:
                reply = call("GET", "/api/user/cart", token=tokens[index % len(tokens)])
                status, served_by = reply.status, reply.served_by
            except OSError:
                status, served_by = 0, ""
            record(Outcome("GET", "", status, served_by, time.monotonic()))

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(len(tokens))]
    workers += [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for worker in workers:
        worker.start()

    def join_all() -> None:
        for worker in workers:
            worker.join(timeout=60)

    return outcomes, threading.Thread(target=join_all)


def finish(joiner: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    joiner.start()
    joiner.join(timeout=60)
    assert not joiner.is_alive(), "load threads did not finish"


def test_killing_a_replica_under_load_loses_no_acknowledged_update(replicas: ReplicaSet, products: list[str]) -> None:
    tokens = [token_for(new_user(f"load{i}")) for i in range(4)]
    stop = threading.Event()
    outcomes, joiner = run_load(tokens=tokens, products=products, readers=2, stop=stop, max_adds=90)
    try:
        # Let the victim acknowledge some writes first, so it has work in flight when it dies.
        assert wait_until(
            lambda: sum(o.served_by == "replica-2" and o.status == 200 for o in list(outcomes)) >= 5, timeout=10
        ), "replica-2 never served the load"
        killed_at = time.monotonic()
        replicas.kill(2)
        # Long enough for nginx to try the dead replica again after fail_timeout (2 s), and retry elsewhere.
        time.sleep(3.0)
    finally:
        finish(joiner, stop)

    writes = [o for o in outcomes if o.method == "POST"]
    failed = [o for o in writes if o.status != 200]
    acked = Counter(o.key for o in writes if o.status == 200)
    after_kill = [o for o in outcomes if o.finished > killed_at + 0.5]
    assert len(after_kill) >= 20, "the load should go on after the kill"
    # Reads are idempotent: nginx retries them on another replica, even when one died mid-request.
    assert [o for o in outcomes if o.method == "GET" and o.status != 200] == []
    # Only writes in flight on the killed replica may fail (nginx answers 502: it never re-sends a POST
    # that reached a replica): at most one per writer, and only at the moment of the kill.
    assert len(failed) <= len(tokens), failed
    assert all(o.status == 502 and killed_at - 0.05 <= o.finished <= killed_at + 1.0 for o in failed), failed
    assert not any(o.served_by == "replica-2" for o in after_kill)
    assert {o.served_by for o in after_kill if o.status == 200} == NAMES - {"replica-2"}

    # No acknowledged add is lost; a failed one may or may not have been applied before the kill.
    failed_keys = Counter(o.key for o in failed)
    for index, token in enumerate(tokens):
        quantities = cart_quantities(token)
        for product in products:
            key = f"{index}:{product}"
            assert acked[key] <= quantities.get(product, 0) <= acked[key] + failed_keys[key], (key, quantities)


def test_sigterm_drains_in_flight_requests_and_reports_not_ready(replicas: ReplicaSet, products: list[str]) -> None:
    drained_pid = replicas.pid(3)
    assert drained_pid is not None
    port = replicas.port(3)
    slow_token = token_for(new_user("slow"))
    tokens = [token_for(new_user(f"drain{i}")) for i in range(3)]
    body = json.dumps({"productId": products[1], "quantity": 5}).encode()

    # An in-flight request on replica-3: its headers and half its body are sent, the rest comes later.
    slow = socket.create_connection(("127.0.0.1", port), timeout=15)
    slow.sendall(
        b"POST /api/user/cart HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {slow_token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    # A kept-alive connection to replica-3, to ask it /readyz once it is shutting down.
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    readiness: list[tuple[int, bytes]] = []

    def readyz() -> int:
        probe.request("GET", "/readyz")
        reply = probe.getresponse()
        readiness.append((reply.status, reply.read()))
        return reply.status

    assert readyz() == 200

    stop = threading.Event()
    outcomes, joiner = run_load(tokens=tokens, products=products, readers=1, stop=stop, max_adds=90)
    try:
        time.sleep(0.5)
        os.kill(drained_pid, signal.SIGTERM)
        terminated_at = time.monotonic()
        assert wait_until(lambda: readyz() == 503, timeout=1.5, interval=0.1), readiness
        assert json.loads(readiness[-1][1])["status"] == "draining"

        def refuses_new_connections() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        assert wait_until(refuses_new_connections, timeout=2), "a draining replica should refuse new connections"
        assert _alive(drained_pid), "replica-3 should still be draining its in-flight request"

        # The in-flight request completes, and is applied.
        slow.sendall(body[10:])
        response = http.client.HTTPResponse(slow)
        response.begin()
        summary = json.loads(response.read())
        assert response.status == 200, summary
        assert response.getheader("X-Served-By") == "replica-3"
        assert {line["productId"]: line["quantity"] for line in summary["lines"]} == {products[1]: 5}

        # With nothing left in flight it exits, well within the graceful timeout.
        assert wait_until(lambda: not _alive(drained_pid), timeout=GRACEFUL_TIMEOUT), "replica-3 did not exit"
        time.sleep(0.5)
    finally:
        slow.close()
        probe.close()
        finish(joiner, stop)

    # Meanwhile nginx sent everything elsewhere: not one request failed, writes included.
    assert [o for o in outcomes if o.status != 200] == []
    late = [o for o in outcomes if o.finished > terminated_at + 0.5]
    assert late
    assert not any(o.served_by == "replica-3" for o in late)
    assert cart_quantities(slow_token) == {products[1]: 5}


def test_a_restarted_replica_rejoins_the_rotation(replicas: ReplicaSet) -> None:
    replicas.kill(1)
    during = served_by_over("/healthz", 6)
    assert set(during) == NAMES - {"replica-1"}, during

    replicas.script("start", "1")
    # nginx tries a failed replica again after fail_timeout (2 s) and keeps it once it answers.
    assert wait_until(lambda: "replica-1" in served_by_over("/healthz", 3), timeout=8, interval=0.2)
    assert set(served_by_over("/healthz", 2 * REPLICAS)) == NAMES


def test_docker_compose_balances_by_the_same_rules() -> None:
    """`docker compose up --scale web=N` is the same topology: nginx re-resolves `web` (so scaled
    replicas all get traffic), retries by the same rules, and Docker lets a replica drain."""
    compose_conf = (ROOT / "deploy" / "nginx" / "compose.conf").read_text()
    local_conf = (ROOT / "devstack" / "nginx" / "replicas.conf.template").read_text()

    def directive(conf: str, name: str) -> str:
        return next(line.strip() for line in conf.splitlines() if line.strip().startswith(f"{name} "))

    for name in (
        "proxy_next_upstream",
        "proxy_next_upstream_timeout",
        "proxy_read_timeout",
        "proxy_set_header Host",
        "client_max_body_size",
        "server_tokens",
        "error_page",
        "return 413",
    ):
        assert directive(compose_conf, name) == directive(local_conf, name)
    assert "http_503" not in directive(compose_conf, "proxy_next_upstream")
    assert "resolve max_fails=1 fail_timeout=2s;" in directive(compose_conf, "server web:8000")
    assert directive(compose_conf, "zone").startswith("zone shopcart_web ")
    assert directive(compose_conf, "resolver").startswith("resolver 127.0.0.11 ")
    assert not any(line.strip().startswith("keepalive ") for line in compose_conf.splitlines())

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    major, minor = (int(part) for part in services["nginx"]["image"].split(":")[1].split("-")[0].split(".")[:2])
    assert (major, minor) >= (1, 28), "upstream `resolve` needs nginx 1.27.3+ (1.28 is the stable branch with it)"
    web = services["web"]
    assert web["environment"]["TRUST_X_FORWARDED_FOR"] == "true"
    assert int(web["stop_grace_period"].rstrip("s")) > 20, "must exceed gunicorn's graceful_timeout"
