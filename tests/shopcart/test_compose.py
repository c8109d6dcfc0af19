"""The web image and docker-compose.yml, for real: the image built and run as a user would, then the
stack brought up with `--scale web=3` through podman-compose on Podman (devstack/compose.py; the
backing services' official images replaced by stand-ins built here, docs/adr/0007) and used only
through nginx, published on a loopback port: ready, migrated once, seeded by the documented command,
a shopper's sign-up, log-in, cart and summary, the spread over the replicas, a replica killed and
back, and `down` + `up` keeping users and carts. Each test prints what it checked.

`make test-compose` runs this module and test_compose_cluster.py (`pytest -m compose`); both are part
of `make test`. The first run builds the images (~2 min, downloads included); later runs reuse them."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.compose import (
    PORT,
    ComposeStack,
    health,
    podman,
    replica_of,
    running_stack,
    timestamp,
)
from tests.support.http import Browser, Reply, call, form_token, hidden_fields
from tests.support.polling import wait_for

pytestmark = [pytest.mark.compose, pytest.mark.slow]

WEB_IMAGE = "localhost/shopcart-web:local"
PASSWORD = "compose-Plum-orchard-91"
REPLICAS = 3


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[compose] {line}")


# -- the image on its own ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("compose_images")
def test_the_web_image_runs_as_its_user_serves_static_files_and_is_healthy(capsys: pytest.CaptureFixture[str]) -> None:
    """No backing service is needed for this: /healthz and static files touch none."""
    name = f"shopcart-image-test-{PORT + 2}"
    podman("rm", "-f", "-t", "0", name, check=False)
    key = secrets.token_urlsafe(50)
    podman(
        "run", "-d", "--name", name, "-e", f"SECRET_KEY={key}", "-e", "SECURE_SSL_REDIRECT=false",
        "-p", f"127.0.0.1:{PORT + 2}:8000", WEB_IMAGE,
    )  # fmt: skip
    try:
        whoami = podman("exec", name, "id", "-un").stdout.strip()
        assert whoami == "shop", whoami
        main_process_user = podman("top", name, "user").stdout.split()[1:]
        assert set(main_process_user) == {"shop"}, main_process_user

        def static() -> Reply | None:
            try:
                return call("GET", "/static/shopcart/site.css", port=PORT + 2, timeout=5)
            except OSError:
                return None

        css = wait_for(static, timeout=60)
        assert css.status == 200, css.status
        assert css.headers["content-type"].startswith("text/css")
        assert b"{" in css.body

        (image,) = json.loads(podman("image", "inspect", WEB_IMAGE).stdout)
        assert image["Config"]["User"] == "shop"
        assert "/healthz" in " ".join(image["Healthcheck"]["Test"]), image["Healthcheck"]
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        assert podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "healthy"
    finally:
        podman("rm", "-f", "-t", "0", name)

    refused = podman("run", "--rm", WEB_IMAGE, check=False)
    assert refused.returncode != 0
    assert "Set the SECRET_KEY environment variable" in refused.stdout + refused.stderr
    report(
        capsys,
        f"web image: runs as `shop`, serves /static/ ({len(css.body)} bytes of CSS), HEALTHCHECK healthy, "
        f"exits {refused.returncode} without SECRET_KEY",
    )


# -- the stack -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(compose_images: None) -> Iterator[ComposeStack]:
    with running_stack(cluster=False, port=PORT) as stack:
        yield stack


@pytest.fixture(scope="module")
def shop() -> dict[str, Any]:
    """What the tests learn along the way and later ones check: the seeded products, the shopper."""
    return {}


def ready(stack: ComposeStack) -> dict[str, Any]:
    reply = stack.call("GET", "/readyz")
    assert reply.status == 200, reply.text
    return reply.json()


def test_ready_through_nginx_on_a_loopback_port(stack: ComposeStack, capsys: pytest.CaptureFixture[str]) -> None:
    body = ready(stack)
    assert body["status"] == "ready", body
    assert {name: check["status"] for name, check in body["checks"].items()} == dict.fromkeys(
        ("database", "elasticsearch", "redis", "nats"), "up"
    )
    published = podman("port", f"{stack.project}_nginx_1").stdout.split()
    assert published == ["80/tcp", "->", f"127.0.0.1:{stack.port}"], published
    states = {c["Name"]: (c["State"]["Status"], health(c)) for c in stack.containers()}
    assert all(state == ("running", "healthy") for name, state in states.items() if not name.endswith("_migrate_1")), (
        states
    )
    report(
        capsys,
        f"docker-compose.yml up with --scale web=3 in {stack.up_took:.0f}s (started {stack.up_rounds}); /readyz "
        f"ready through nginx on 127.0.0.1:{stack.port}, its only published port; {len(states) - 1} containers "
        "running and healthy",
    )


def test_migrate_ran_once_before_the_replicas(stack: ComposeStack, capsys: pytest.CaptureFixture[str]) -> None:
    (migrate,) = stack.containers("migrate")
    assert (migrate["State"]["Status"], migrate["State"]["ExitCode"]) == ("exited", 0)
    assert "Applying accounts.0001_initial... OK" in stack.logs(migrate["Name"])
    finished = timestamp(migrate["State"]["FinishedAt"])
    replicas = stack.containers("web")
    assert len(replicas) == REPLICAS
    for replica in replicas:
        assert timestamp(replica["State"]["StartedAt"]) >= finished, (replica["Name"], finished)
        assert "Applying " not in stack.logs(replica["Name"])
    report(capsys, f"migrate: one container, exit 0, finished before each of the {REPLICAS} web replicas started")


def test_seeding_by_the_documented_command(
    stack: ComposeStack, shop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    output = stack.compose("exec", "-T", "web", "python", "manage.py", "seed")
    added = re.search(r"Added (\d+) products", output)
    assert added, output
    assert "demo@shopcart.local" in output
    listing = stack.call("GET", "/api/products?page_size=50")
    assert listing.status == 200, listing.text
    assert listing.json()["total"] == int(added.group(1))
    shop["products"] = [item["id"] for item in listing.json()["items"] if item["stock"] >= 20]
    report(capsys, f"`exec web python manage.py seed`: {added.group(1)} products, listed through nginx")


def test_sign_up_log_in_add_to_cart_and_summary(
    stack: ComposeStack, shop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    email = f"compose-{uuid.uuid4().hex[:10]}@example.com"
    first, second = shop["products"][:2]
    # Pages: sign-up (which logs in), then add to cart from the product page's own form.
    browser = Browser(stack.port)
    page = browser.go("GET", "/accounts/signup/")
    signup = browser.go(
        "POST",
        "/accounts/signup/",
        form={"csrfmiddlewaretoken": form_token(page), "name": "Compose", "email": email}
        | {"password1": PASSWORD, "password2": PASSWORD},
    )
    assert signup.status == 302, signup.text
    product_page = browser.go("GET", f"/products/{first}")
    added = browser.go("POST", "/cart/add", form=hidden_fields(product_page, "/cart/add") | {"quantity": "2"})
    assert added.status == 302, added.text
    cart_page = browser.go("GET", "/cart/")
    assert cart_page.status == 200, cart_page.text
    assert "Log out" in cart_page.text, cart_page.text

    # The API: log in, add, the summary of both adds.
    login = stack.call("POST", "/api/login", json_body={"email": email, "password": PASSWORD})
    assert login.status == 200, login.text
    token = login.json()["auth_token"]
    add = stack.call(
        "POST",
        "/api/user/cart",
        json_body={"productId": second, "quantity": 1},
        token=token,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert add.status == 200, add.text
    summary = stack.call("GET", "/api/user/cart", token=token)
    assert summary.status == 200, summary.text
    quantities = {line["productId"]: line["quantity"] for line in summary.json()["lines"]}
    assert quantities == {first: 2, second: 1}, summary.json()
    assert summary.json()["itemCount"] == 3
    served = {replica_of(reply) for reply in (page, signup, product_page, added, cart_page, login, add, summary)}
    shop.update(email=email, token=token, cookies=dict(browser.cookies), quantities=quantities)
    report(
        capsys,
        f"sign-up and add on the pages, log-in, add and the summary ({summary.json()['subtotal']} "
        f"{summary.json()['currency']}, 3 items) through the API, answered by {len(served)} replicas",
    )


def spread(stack: ComposeStack, count: int) -> Counter[str]:
    replies = [stack.call("GET", "/healthz") for _ in range(count)]
    assert all(reply.status == 200 for reply in replies), [reply.status for reply in replies]
    return Counter(replica_of(reply) for reply in replies)


def replica_ids(stack: ComposeStack) -> set[str]:
    return {container["Config"]["Hostname"] for container in stack.containers("web")}


def test_requests_spread_over_the_three_replicas(stack: ComposeStack, capsys: pytest.CaptureFixture[str]) -> None:
    counts = spread(stack, 4 * REPLICAS)
    assert set(counts) == replica_ids(stack), counts
    assert min(counts.values()) >= 2, counts
    report(capsys, f"12 requests through nginx: X-Served-By over the {REPLICAS} replicas {sorted(counts.values())}")


def test_a_killed_replica_is_routed_around_and_comes_back_healthy(
    stack: ComposeStack, shop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    victim = f"{stack.project}_web_2"
    restarts = stack.container(victim)["RestartCount"]
    stack.kill(victim)
    killed_at = time.monotonic()
    product = shop["products"][2]
    replies = []
    for number in range(15):
        replies.append(stack.call("GET", f"/api/products/{product}"))
        replies.append(
            stack.call(
                "POST",
                "/api/user/cart",
                json_body={"productId": product, "quantity": 1},
                token=shop["token"],
                headers={"Idempotency-Key": f"kill-{number}-{uuid.uuid4().hex}"},
            )
        )
    statuses = Counter(reply.status for reply in replies)
    assert statuses == {200: 30}, statuses
    summary = stack.call("GET", "/api/user/cart", token=shop["token"]).json()
    assert {line["productId"]: line["quantity"] for line in summary["lines"]}[product] == 15
    shop["quantities"][product] = 15

    def back() -> bool:
        container = stack.container(victim)
        return container["RestartCount"] > restarts and health(container) == "healthy"

    wait_for(back, timeout=90, interval=0.5)
    healthy_after = time.monotonic() - killed_at
    # nginx takes it back once a request finds it answering (fail_timeout 2 s).
    wait_for(lambda: set(spread(stack, 2 * REPLICAS)) == replica_ids(stack), timeout=30, interval=1)
    report(
        capsys,
        f"{victim} SIGKILLed: 30 requests right after (15 adds) all 200; restarted by its restart policy, "
        f"healthy {healthy_after:.0f}s after the kill, back in the rotation",
    )


def test_down_and_up_again_keep_users_and_carts(
    stack: ComposeStack, shop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stack.down()
    assert stack.containers() == []
    volumes = podman("volume", "ls", f"--filter=label=com.docker.compose.project={stack.project}", "--format={{.Name}}")
    assert len(volumes.stdout.split()) == 4, volumes.stdout
    stack.up()

    login = stack.call("POST", "/api/login", json_body={"email": shop["email"], "password": PASSWORD})
    assert login.status == 200, login.text
    summary = stack.call("GET", "/api/user/cart", token=login.json()["auth_token"])
    assert {line["productId"]: line["quantity"] for line in summary.json()["lines"]} == shop["quantities"]
    # The page session too (Redis' append-only file is on its volume).
    cart_page = Browser(stack.port, dict(shop["cookies"])).go("GET", "/cart/")
    assert cart_page.status == 200, cart_page.text
    assert "Log out" in cart_page.text, cart_page.text
    (migrate,) = stack.containers("migrate")
    assert "No migrations to apply." in stack.logs(migrate["Name"])
    report(
        capsys,
        f"down (4 volumes kept) and up again in {stack.up_took:.0f}s: the user logs in, the cart is as it was "
        f"({sum(shop['quantities'].values())} items), the page session holds, migrate had nothing to apply",
    )
