"""Faults: Elasticsearch, Redis and NATS stopped and restarted in turn, under light load, against a real
gunicorn (several worker processes, like a replica) serving the test settings.

For each service, while a few client threads keep adding to one cart and reading pages:
* no response is a 500: a request that needs the service gets a readable 503 (HTML page or JSON error
  `service_unavailable`, never a stack trace), and what does not need it keeps working, exactly as
  the table in docs/operations.md says (the test reads that table and checks every cell);
* after the service returns, `/readyz` and a real request that needs it succeed within 10 s;
* no acknowledged cart update is lost and none was applied behind a 503: the line's final quantity
  equals the number of 200 answers;
* every acknowledged add's event arrives on the stream exactly once (by eventId), also those that
  waited in their cart document while NATS was down.

The deterministic tests at the end inject the failure at the exact moment a real outage can only hit
by chance (between the Elasticsearch write and what follows it), in-process.

`make test-faults` runs this module (`pytest -m faults`). It stops services of the stack named by the
environment (devstack/stack.sh); run it on a private stack if others share yours (docs/operations.md).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.test import Client

from cart import events, selectors
from shopcart.eventbus import EventBusUnavailable, NatsPublisher
from tests.support import ROOT, unique
from tests.support import http as loopback
from tests.support.api import api_client
from tests.support.cart import delete_stream, make_product, make_user, stream_messages
from tests.support.database import own_database
from tests.support.gunicorn import gunicorn, manage
from tests.support.http import Reply
from tests.support.polling import stays_true, wait_for
from tests.support.stack import stack

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OPERATIONS_DOC = ROOT / "docs" / "operations.md"
SERVICES = ("elasticsearch", "redis", "nats", "postgres")
DOC_COLUMNS = {
    "elasticsearch": "Elasticsearch down",
    "redis": "Redis down",
    "nats": "NATS down",
    "postgres": "PostgreSQL down",
}
# The name /readyz gives each service's check.
READYZ_CHECKS = {"elasticsearch": "elasticsearch", "redis": "redis", "nats": "nats", "postgres": "database"}
PASSWORD = "a-Long-password-1"
RECOVERY_SECONDS = 10.0
ADDERS = 3  # light load: a few clients, each pausing between requests
PAUSE = 0.05


# -- a small HTTP client with its own cookies (a browser, or an API client) ----------------------------


@dataclass
class Browser(loopback.Browser):
    """A loopback browser (tests.support.http) that asks for HTML on pages and JSON under /api/, sends
    its CSRF cookie's token with every form and, as an API client, its Bearer token."""

    token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, Any] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> Reply:
        headers = {"Accept": "text/html" if form is not None or not path.startswith("/api/") else "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if form is not None:
            form = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form}
        return self.go(method, path, form=form, json_body=json_body, token=self.token, headers=headers, timeout=20)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, Any]) -> Reply:
        return self.request("POST", path, form=form)


# -- the server --------------------------------------------------------------------------------------


@dataclass
class Shop:
    port: int
    users: dict[str, dict[str, Any]]
    stream: str
    prefix: str
    log: Path

    def browser(self, token_of: str | None = None) -> Browser:
        return Browser(port=self.port, token=self.users[token_of]["token"] if token_of else None)

    def signed_in(self, who: str) -> Browser:
        browser = Browser(port=self.port)
        browser.get("/accounts/login/")  # the CSRF cookie
        response = browser.post("/accounts/login/", {"email": self.users[who]["email"], "password": PASSWORD})
        assert response.status == 302, response.text[:500]
        return browser

    def pending_events(self) -> int:
        """Events still waiting in the cart documents of the test's users (published ones are removed)."""
        return sum(
            len(events.pending_entries(selectors.get_cart(cart_id=f"user-{user['id']}")))
            for user in self.users.values()
        )


_MAKE_USERS = f"""
import json
from accounts.models import User
from accounts.services import issue_token
users = {{}}
for role in ("loader", "prober", "staff", "member"):
    user = User.objects.create_user(email=role + "@faults.example.com", password={PASSWORD!r}, name=role.title(),
                                    is_staff=role == "staff", is_superuser=role == "staff")
    users[role] = {{"id": user.pk, "email": user.email, "token": issue_token(user=user).auth_token}}
print("USERS=" + json.dumps(users))
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """gunicorn on a free port with the test settings, its own database, its own event stream, subject
    prefix (read from the environment by the settings), and a quick event relay."""
    tmp = tmp_path_factory.mktemp("faults")
    tag = uuid.uuid4().hex[:8]
    stream = f"CART_FAULTS_{settings.TEST_RUN_ID}_{tag}".upper()
    prefix = f"faults{settings.TEST_RUN_ID}{tag}.cart"
    with own_database("faults") as database:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "shopcart.settings.test",
            "SHOPCART_TEST_RUN_ID": settings.TEST_RUN_ID,  # the same index and cache prefixes as this process
            "DATABASE_URL": database,
            "CART_MAX_QUANTITY_PER_LINE": "5000",
            "CART_EVENTS_STREAM": stream,
            "CART_EVENTS_SUBJECT_PREFIX": prefix,
            "CART_RELAY_INTERVAL": "0.3",
            "CART_RELAY_GRACE_SECONDS": "1",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "GUNICORN_ACCESSLOG": "/dev/null",
        }
        created = manage("shell", "-c", _MAKE_USERS, env=env)
        users = json.loads(created.split("USERS=")[-1])

        try:
            with gunicorn(env=env, log_path=tmp / "gunicorn.log") as port:
                yield Shop(port=port, users=users, stream=stream, prefix=prefix, log=tmp / "gunicorn.log")
        finally:
            delete_stream(stream)


# -- what a 503 must look like -------------------------------------------------------------------------

_LEAKS = ("Traceback", 'File "', "ConnectionError", "Exception", "redis.exceptions", "elastic_transport")


def error_code(response: Reply) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


UNAVAILABLE = ("service_unavailable",)


def unavailable_problem(response: Reply, path: str, *, codes: tuple[str, ...] = UNAVAILABLE) -> str | None:
    """Why `response` is not a proper 503 for `path` (an API error with one of `codes`), or None if it is one."""
    if response.status != 503:
        return f"status {response.status}, not 503"
    if response.headers.get("retry-after") != "5":
        return "no Retry-After"
    if any(leak in response.text for leak in _LEAKS):
        return f"leaks internals: {response.text[:300]!r}"
    if path.startswith("/api/"):
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return f"not the JSON error shape: {response.text[:200]!r}"
        if error.get("code") not in codes or not error.get("message"):
            return f"wrong error body: {error!r}"
        return None
    if not response.headers.get("content-type", "").startswith("text/html"):
        return f"not an HTML page: {response.headers.get('content-type')}"
    if "Temporarily unavailable" not in response.text or "HTTP 503" not in response.text:
        return "not the readable 503 page"
    return None


# -- load: a few clients adding to one cart and reading pages ------------------------------------------


@dataclass
class Record:
    what: str
    path: str
    status: int
    response: Reply


@dataclass
class Load:
    shop: Shop
    product_id: str
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Adds first answered `outcome_unknown`: the status that finally settled each one.
    unknown_resolved: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, what: str, path: str, response: Reply) -> None:
        with self._lock:
            self.records.append(Record(what, path, response.status, response))

    def _adder(self) -> None:
        """Adds one at a time, each with its own Idempotency-Key. An add answered `outcome_unknown` (its
        write reached Elasticsearch, the answer did not) is sent again with the same key until it gets a
        definite answer, as that answer tells an API client to: the add then counts once, whatever the
        lost write did."""
        client = self.shop.browser(token_of="loader")
        while not self._stop.is_set():
            key = f"load-{uuid.uuid4()}"
            unknown = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    response = client.request(
                        "POST",
                        "/api/user/cart",
                        json_body={"productId": self.product_id, "quantity": 1},
                        idempotency_key=key,
                    )
                except (OSError, http.client.HTTPException) as exc:  # the app never went away: none expected
                    with self._lock:
                        self.errors.append(f"add: {exc!r}")
                    break
                self._record("add", "/api/user/cart", response)
                if response.status == 503 and error_code(response) == "outcome_unknown":
                    unknown = True
                if not unknown or response.status == 200:
                    break
                time.sleep(PAUSE)  # outcome unknown: ask again, same key, until the answer is definite
            if unknown:  # the last answer settled it, or the deadline passed (then not a 200: the test fails)
                with self._lock:
                    self.unknown_resolved.append(response.status)
            time.sleep(PAUSE)

    def _reader(self) -> None:
        client = self.shop.browser()
        paths = ["/healthz", f"/api/products/{self.product_id}", "/", f"/products/{self.product_id}"]
        index = 0
        while not self._stop.is_set():
            path = paths[index % len(paths)]
            index += 1
            try:
                response = client.get(path)
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(f"GET {path}: {exc!r}")
            else:
                self._record("read", path, response)
            time.sleep(PAUSE)

    def _accounts(self) -> None:
        """Log-ins and sign-ups through the API: the requests that need the database."""
        client = self.shop.browser()
        login = {"email": self.shop.users["member"]["email"], "password": PASSWORD}
        index = 0
        while not self._stop.is_set():
            index += 1
            if index % 2:
                path, body = "/api/login", login
            else:
                email = f"{unique('new')}@faults.example.com"
                path, body = "/api/register", {"name": "New", "email": email, "password": PASSWORD}
            try:
                response = client.request("POST", path, json_body=body)
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(f"POST {path}: {exc!r}")
            else:
                self._record("account", path, response)
            time.sleep(PAUSE)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._adder) for _ in range(ADDERS)]
        self._threads.append(threading.Thread(target=self._reader))
        self._threads.append(threading.Thread(target=self._accounts))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    @property
    def acknowledged(self) -> int:
        """Adds answered 200: each counts once (a retried unknown add ends in one 200)."""
        return sum(1 for record in self.records if record.what == "add" and record.status == 200)

    def problems(self) -> list[str]:
        found = list(self.errors)
        for record in self.records:
            if record.path == "/healthz" and record.status != 200:
                found.append(f"/healthz answered {record.status}")
            elif record.status == 503:
                codes = (*UNAVAILABLE, "outcome_unknown") if record.what == "add" else UNAVAILABLE
                problem = unavailable_problem(record.response, record.path, codes=codes)
                if problem:
                    found.append(f"{record.path}: {problem}")
            elif record.what == "add" and record.status not in (200, 409):
                found.append(f"add answered {record.status}: {record.response.text[:200]}")
            elif record.what == "read" and record.status != 200:
                found.append(f"GET {record.path} answered {record.status}")
            elif record.what == "account" and record.status not in (200, 201):
                found.append(f"POST {record.path} answered {record.status}: {record.response.text[:200]}")
        return found


# -- the table in docs/operations.md, and one probe per row ---------------------------------------------


def documented_table() -> dict[str, dict[str, int]]:
    """{"`GET /healthz` · anyone": {"elasticsearch": 200, "redis": 200, "nats": 200}, ...}"""
    lines = OPERATIONS_DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| request |") and "Redis down" in line)
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    columns = {service: header.index(title) for service, title in DOC_COLUMNS.items()}
    table: dict[str, dict[str, int]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        key = f"{cells[0]} · {cells[1]}"
        statuses = {}
        for service, column in columns.items():
            match = re.match(r"\d{3}", cells[column])
            assert match, f"{key}: no status in {cells[column]!r}"
            statuses[service] = int(match.group())
        table[key] = statuses
    return table


@dataclass
class Session:
    """What the probes use, prepared before the service is stopped (logging in needs Redis)."""

    shop: Shop
    product_id: str
    signed_in: Browser
    staff: Browser
    fresh: Callable[[], Browser]


def _fresh_with_csrf(shop: Shop) -> Callable[[], Browser]:
    # A CSRF cookie needs no service, so new visitors can be made during any outage.
    def make() -> Browser:
        browser = shop.browser()
        assert browser.get("/accounts/login/").status == 200
        return browser

    return make


def _words() -> str:
    return f"zq{uuid.uuid4().hex[:10]}"


PROBES: dict[str, Callable[[Session], tuple[str, Reply]]] = {
    "`GET /healthz` · anyone": lambda s: ("/healthz", s.shop.browser().get("/healthz")),
    "`GET /readyz` · anyone": lambda s: ("/readyz", s.shop.browser().get("/readyz")),
    "`GET /` · anonymous, viewed in the last 5 min": lambda s: ("/", s.shop.browser().get("/")),
    "`GET /products/<id>` · anonymous, viewed in the last 5 min": lambda s: (
        "/products/",
        s.shop.browser().get(f"/products/{s.product_id}"),
    ),
    "`GET /search?q=<new words>` · anonymous": lambda s: ("/search", s.shop.browser().get(f"/search?q={_words()}")),
    "`GET /api/products?q=<new words>` · anyone": lambda s: (
        "/api/products",
        s.shop.browser().get(f"/api/products?q={_words()}"),
    ),
    "`GET /accounts/login/` · anonymous": lambda s: ("/accounts/login/", s.shop.browser().get("/accounts/login/")),
    "`POST /accounts/login/` · anonymous": lambda s: (
        "/accounts/login/",
        s.fresh().post("/accounts/login/", {"email": s.shop.users["prober"]["email"], "password": PASSWORD}),
    ),
    "`POST /accounts/signup/` · anonymous": lambda s: ("/accounts/signup/", _signup(s)),
    "`POST /api/register` · anyone": lambda s: (
        "/api/register",
        s.shop.browser().request(
            "POST",
            "/api/register",
            json_body={"name": "New", "email": f"{unique('new')}@faults.example.com", "password": PASSWORD},
        ),
    ),
    "`POST /api/login` · anyone": lambda s: (
        "/api/login",
        s.shop.browser().request(
            "POST", "/api/login", json_body={"email": s.shop.users["prober"]["email"], "password": PASSWORD}
        ),
    ),
    "`GET /api/me` · Bearer": lambda s: ("/api/me", s.shop.browser("prober").get("/api/me")),
    "`GET /api/user/cart` · Bearer": lambda s: ("/api/user/cart", s.shop.browser("prober").get("/api/user/cart")),
    "`POST /api/user/cart` · Bearer": lambda s: (
        "/api/user/cart",
        s.shop.browser("prober").request(
            "POST", "/api/user/cart", json_body={"productId": s.product_id, "quantity": 1}
        ),
    ),
    "`GET /cart/` · signed in": lambda s: ("/cart/", s.signed_in.get("/cart/")),
    "`POST /cart/add` · signed in": lambda s: (
        "/cart/add",
        s.signed_in.post("/cart/add", {"product_id": s.product_id, "quantity": "1"}),
    ),
    "`GET /cart/` · anonymous": lambda s: ("/cart/", s.shop.browser().get("/cart/")),
    "`POST /cart/add` · anonymous, first item": lambda s: (
        "/cart/add",
        s.fresh().post("/cart/add", {"product_id": s.product_id, "quantity": "1"}),
    ),
    "`GET /accounts/password/` · signed in": lambda s: ("/accounts/password/", s.signed_in.get("/accounts/password/")),
    "`GET /admin/catalog/products/` · staff": lambda s: (
        "/admin/catalog/products/",
        s.staff.get("/admin/catalog/products/"),
    ),
    "`GET /admin/login/` · anonymous": lambda s: ("/admin/login/", s.shop.browser().get("/admin/login/")),
}


def _signup(session: Session) -> Reply:
    email = f"{unique('signup')}@faults.example.com"
    form = {"name": "Signup", "email": email, "password1": PASSWORD + "x", "password2": PASSWORD + "x"}
    return session.fresh().post("/accounts/signup/", form)


def test_the_documented_table_has_a_probe_for_every_row() -> None:
    assert set(documented_table()) == set(PROBES)


def _check_probe(service: str, key: str, expected: int, path: str, response: Reply) -> str | None:
    if response.status != expected:
        return f"{key}: {service} down → {response.status}, documented {expected}: {response.text[:200]!r}"
    if path == "/readyz":
        body = response.json()
        if body["checks"][READYZ_CHECKS[service]]["status"] != "down" or body["status"] != "unavailable":
            return f"/readyz does not name {service}: {body}"
        return None
    if expected == 503:
        problem = unavailable_problem(response, path)
        return f"{key}: {problem}" if problem else None
    return None


# -- the fault tests -----------------------------------------------------------------------------------


def _wait_down(shop: Shop, service: str) -> None:
    def down() -> bool:
        body = shop.browser().get("/readyz").json()
        return body["checks"][READYZ_CHECKS[service]]["status"] == "down"

    wait_for(down, timeout=10, interval=0.1)


def _recovered(shop: Shop, service: str, product_id: str, sent: dict[str, int]) -> bool:
    """/readyz is ready and a real request that needs the service succeeds."""
    if shop.browser().get("/readyz").status != 200:
        return False
    if service == "elasticsearch":
        return shop.browser("prober").get("/api/user/cart").status == 200
    if service == "redis":
        return shop.browser("prober").get("/api/me").status == 200
    if service == "postgres":
        # A log-in reads the account: the replica's pooled connections were broken by the restart.
        login = {"email": shop.users["prober"]["email"], "password": PASSWORD}
        return shop.browser().request("POST", "/api/login", json_body=login).status == 200
    # NATS: one add after the restart, and its event reaches the stream (sent at once, or after the
    # relay's grace when an older event of the cart is still in flight). `sent` keeps the add's quantity
    # between polls, so the prober adds once rather than racing its own events.
    if "quantity" not in sent:
        response = shop.browser("prober").request(
            "POST", "/api/user/cart", json_body={"productId": product_id, "quantity": 1}
        )
        if response.status != 200:
            return False
        sent["quantity"] = next(
            line["quantity"] for line in response.json()["lines"] if line["productId"] == product_id
        )
    found = _events_for(shop, f"user-{shop.users['prober']['id']}", product_id)
    return found is not None and any(event["newQuantity"] == sent["quantity"] for event in found)


def _events_for(shop: Shop, owner: str, product_id: str) -> list[dict[str, Any]] | None:
    try:
        messages = stream_messages(shop.stream)
    except EventBusUnavailable:
        return None
    return [
        m["event"]
        for m in messages
        if m["event"]["owner"] == owner and m["event"]["productId"] == product_id and m["event"]["type"] == "item_added"
    ]


@pytest.fixture
def services_restarted() -> Iterator[None]:
    """Whatever happens in the test, every service is running again afterwards."""
    yield
    for service in SERVICES:
        stack("start", service)
    # This process's own connection to the test database may have been broken by a PostgreSQL restart; the
    # next test connects anew (tests that use the database run in a transaction on it).
    connections.close_all()


@pytest.mark.usefixtures("services_restarted")
@pytest.mark.parametrize("service", SERVICES)
def test_a_stopped_service_gives_503s_only_where_needed_and_nothing_is_lost(shop: Shop, service: str) -> None:
    counted = make_product(stock=100_000, name=f"Counted {service}")  # only the load adds this one
    probed = make_product(stock=100_000, name=f"Probed {service}")
    table = documented_table()
    session = Session(
        shop=shop,
        product_id=probed.id,
        signed_in=shop.signed_in("prober"),
        staff=shop.signed_in("staff"),
        fresh=_fresh_with_csrf(shop),
    )
    # "Viewed in the last 5 minutes": these pages are in the cache now.
    assert shop.browser().get("/").status == 200
    assert shop.browser().get(f"/products/{probed.id}").status == 200

    load = Load(shop, counted.id)
    load.start()
    try:
        time.sleep(1.0)
        stack("stop", service)
        try:
            _wait_down(shop, service)
            time.sleep(0.5)  # the load meets the outage
            mismatches = []
            for key, statuses in table.items():
                path, response = PROBES[key](session)
                problem = _check_probe(service, key, statuses[service], path, response)
                if problem:
                    mismatches.append(problem)
        finally:
            stack("start", service)
        back = time.monotonic()
        sent: dict[str, int] = {}
        wait_for(lambda: _recovered(shop, service, probed.id, sent), timeout=RECOVERY_SECONDS, interval=0.1)
        recovery = time.monotonic() - back
        time.sleep(1.0)  # the load after the return
    finally:
        load.stop()

    statuses = Counter((record.what, record.status) for record in load.records)
    unknown = len(load.unknown_resolved)
    print(f"\n{service}: recovered in {recovery:.2f}s; load {dict(statuses)}; adds unknown, then settled: {unknown}")
    assert mismatches == [], "\n".join(mismatches)
    assert load.problems() == [], load.problems()[:10]
    # Only a write that reached Elasticsearch can lose its answer; each such add settled by its retry.
    assert unknown == 0 or service == "elasticsearch", f"{unknown} adds answered outcome_unknown without {service}"
    assert all(status == 200 for status in load.unknown_resolved), load.unknown_resolved
    if service in ("elasticsearch", "redis"):
        assert statuses[("add", 503)] > 0, "the load never met the outage"
    else:
        assert statuses[("add", 503)] == 0, f"adds need no {service}"
    if service in ("postgres", "redis"):
        assert statuses[("account", 503)] > 0, "the log-ins and sign-ups never met the outage"
    else:
        assert statuses[("account", 503)] == 0, f"log-ins and sign-ups need no {service}"

    # No acknowledged add lost, and none applied behind a 503 or 409.
    acknowledged = load.acknowledged
    assert acknowledged > 0
    cart = shop.browser("loader").get("/api/user/cart").json()
    quantity = next((line["quantity"] for line in cart["lines"] if line["productId"] == counted.id), 0)
    assert quantity == acknowledged

    # Every acknowledged add's event, exactly once, also those that waited for NATS in their cart.
    owner = f"user-{shop.users['loader']['id']}"
    found = wait_for(
        lambda: (e := _events_for(shop, owner, counted.id)) is not None and len(e) >= acknowledged and e,
        timeout=RECOVERY_SECONDS + 5,
        interval=0.2,
    )
    ids = [event["eventId"] for event in found]
    assert len(ids) == len(set(ids)) == acknowledged
    assert sorted(event["newQuantity"] for event in found) == list(range(1, acknowledged + 1))
    wait_for(lambda: shop.pending_events() == 0, timeout=10)
    assert "Internal Server Error" not in shop.log.read_text()


# -- deterministic: the failure injected right after the Elasticsearch write ---------------------------


def _added_events(product_id: str) -> list[dict[str, Any]]:
    return [
        m["event"]
        for m in stream_messages(str(settings.CART_EVENTS_STREAM))
        if m["event"]["productId"] == product_id and m["event"]["type"] == "item_added"
    ]


def _redis_down(*args: Any, **kwargs: Any) -> Any:
    raise redis.exceptions.ConnectionError("Error 111 connecting to redis: Connection refused.")


@pytest.mark.django_db
@pytest.mark.usefixtures("cart_events_env")
def test_an_applied_change_is_acknowledged_when_its_summary_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis (the summary cache, the catalog version) or Elasticsearch (current prices) failing after
    the cart write must not turn the applied change into a 503 that says nothing changed."""
    product = make_product(price="4.50", stock=10)
    client = api_client(make_user())
    monkeypatch.setattr(selectors, "catalog_version", _redis_down)

    response = client.post_json("/api/user/cart", {"productId": product.id, "quantity": 2})

    assert response.status_code == 200, response.content
    line = response.json()["lines"][0]
    assert (line["productId"], line["quantity"], line["unitPrice"]) == (product.id, 2, "4.50")
    assert response.json()["subtotal"] == "9.00"
    monkeypatch.undo()
    assert client.get("/api/user/cart").json()["lines"][0]["quantity"] == 2
    assert len(wait_for(lambda: _added_events(product.id))) == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("cart_events_env")
def test_an_event_that_cannot_be_published_waits_in_its_cart(monkeypatch: pytest.MonkeyPatch) -> None:
    """NATS failing right after the cart write: the change is acknowledged (it was applied) and its
    event, written with it, waits in the cart document until the relay publishes it, once."""
    product = make_product(stock=10)
    user = make_user()
    client = api_client(user)
    dead = NatsPublisher(url="nats://127.0.0.1:1", timeout=0.3)
    monkeypatch.setattr(events, "publisher", lambda: dead)

    response = client.post_json("/api/user/cart", {"productId": product.id, "quantity": 1})

    assert response.status_code == 200, response.content
    assert len(events.pending_entries(selectors.get_cart(cart_id=f"user-{user.pk}"))) == 1
    monkeypatch.undo()
    events.relay_pending(grace=0, refresh=True)
    assert len(wait_for(lambda: _added_events(product.id))) == 1
    assert events.pending_entries(selectors.get_cart(cart_id=f"user-{user.pk}")) == []


@pytest.mark.django_db
@pytest.mark.usefixtures("cart_events_env")
def test_a_guest_cart_is_not_written_when_its_session_cannot_be_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest's first add creates the session that names the cart. If Redis cannot store it the
    request fails before anything is written: no orphan cart, no event for it, and the 503 is true."""
    from django.contrib.sessions.backends.cache import SessionStore

    product = make_product(stock=10)
    browser = Client(raise_request_exception=False)
    browser.get("/accounts/login/")
    monkeypatch.setattr(SessionStore, "save", _redis_down)

    response = browser.post("/cart/add", {"product_id": product.id, "quantity": "1"})

    assert response.status_code == 503
    stays_true(lambda: _added_events(product.id) == [], seconds=1.5, why="the time an event would take to be published")
    monkeypatch.undo()
    assert _added_events(product.id) == []


@pytest.mark.django_db
def test_a_sign_up_whose_session_cannot_be_stored_creates_no_account(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.contrib.sessions.backends.cache import SessionStore

    from accounts.models import User

    email = f"{unique('signup')}@example.com"
    monkeypatch.setattr(SessionStore, "save", _redis_down)
    response = Client(raise_request_exception=False).post(
        "/accounts/signup/", {"name": "Sam", "email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 503
    assert not User.objects.filter(email=email).exists()


@pytest.mark.django_db
def test_a_session_that_cannot_be_read_is_a_503_not_an_empty_cart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Django's cache session store treats any error while loading as "no session": with Redis down a
    signed-in shopper would silently look logged out, with an empty cart. That must be a 503."""
    user = make_user()
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    real_get = cache.get

    def get(key: str, *args: Any, **kwargs: Any) -> Any:
        if "session" in key:
            _redis_down()
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", get)
    response = browser.get("/cart/")
    assert response.status_code == 503, response.content[:300]
    assert b"Temporarily unavailable" in response.content
