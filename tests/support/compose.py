"""The compose stacks on Podman (devstack/compose.py, docs/adr/0007) for the tests: a stack of the
test's own (its project name, its nginx on a loopback port), its containers inspected, killed and
restarted, and everything it made removed at the end: containers, network, volumes (images are kept,
so a second run reuses them).

Ports: COMPOSE_PORT (default 8900) for the single-node stack's nginx, +1 for the cluster's, +2 for the
web image checked on its own; a second checkout on the same machine sets another (see .env)."""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support import http as loopback
from tests.support.polling import wait_for

SCRIPT = ROOT / "devstack" / "compose.py"
PORT = int(os.environ.get("COMPOSE_PORT", "8900"))
# The variables the compose files substitute: the test sets each, so nothing leaks in from the
# environment (a developer's .env exported by make, say).
SUBSTITUTED = (
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "POSTGRES_PASSWORD",
    "HTTP_PORT",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "COMPOSE_PROJECT_NAME",
)


def compose_py(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """devstack/compose.py with `args`; its output, or the test fails showing it."""
    command = [sys.executable, str(SCRIPT), *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        command_line = " ".join(["devstack/compose.py", *args])
        output = f"{result.stdout}\n{result.stderr}"
        pytest.fail(f"`{command_line}` failed (exit {result.returncode}):\n{output}", pytrace=False)
    return result.stdout + result.stderr


@functools.cache
def podman_env() -> dict[str, str]:
    """The environment that points podman at the checkout's store and settings (`compose.py env`)."""
    exports = compose_py("env").splitlines()
    return {**os.environ, **dict(line.removeprefix("export ").split("=", 1) for line in exports if "=" in line)}


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """podman on the checkout's store (the one devstack/compose.py uses)."""
    result = subprocess.run(["podman", *args], env=podman_env(), cwd=ROOT, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"`podman {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return result


def timestamp(value: str) -> datetime:
    """A time as podman inspect gives it (nanoseconds, a zone) as a datetime."""
    match = re.match(r"(\S+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value.replace(" ", "T", 1))
    assert match, value
    whole, fraction, zone = match.groups()
    return datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}{'+00:00' if zone == 'Z' else zone}")


@dataclass
class ComposeStack:
    """A stack brought up by devstack/compose.py under `project`, nginx published on 127.0.0.1:`port`."""

    cluster: bool
    project: str
    port: int
    env: dict[str, str]
    up_took: float = 0.0  # seconds, the last `up`
    up_rounds: str = ""  # and when each of its rounds started

    def script(self, command: str, *args: str, timeout: float = 900) -> str:
        cluster = ["--cluster"] if self.cluster else []
        return compose_py(command, *cluster, "--project-name", self.project, *args, env=self.env, timeout=timeout)

    def up(self) -> None:
        started = time.monotonic()
        output = self.script("up", "--scale", "web=3")
        self.up_took = time.monotonic() - started
        # "started elasticsearch, nats, ... (4s)": when each round could start, for the report.
        self.up_rounds = "; ".join(re.findall(r"\[compose\] started (.+)", output))

    def down(self, *, volumes: bool = False) -> None:
        self.script("down", *(["--volumes"] if volumes else []))

    def compose(self, *args: str) -> str:
        """podman-compose on this stack, as a user runs it (`compose.py compose run --rm ...`)."""
        return self.script("compose", *args, timeout=300)

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        labels = [f"label=com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"label=com.docker.compose.service={service}")
        ids = podman("ps", "-a", "-q", *(f"--filter={label}" for label in labels)).stdout.split()
        return json.loads(podman("inspect", *ids).stdout) if ids else []

    def container(self, name: str) -> dict[str, Any]:
        return json.loads(podman("inspect", name).stdout)[0]

    def logs(self, name: str) -> str:
        result = podman("logs", name)
        return result.stdout + result.stderr

    def kill(self, name: str) -> None:
        """SIGKILL to the container's main process, from outside: a crash, not a `stop`. Returns once
        every process the container had is gone (the kernel ends them with the main one): requests sent
        after that are not in flight on it."""
        processes = [int(pid) for pid in podman("top", name, "hpid").stdout.split()[1:]]
        os.kill(self.container(name)["State"]["Pid"], signal.SIGKILL)
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in processes), timeout=10, interval=0.02)

    def call(self, method: str, path: str, **kwargs: Any) -> loopback.Reply:
        return loopback.call(method, path, port=self.port, **kwargs)

    def save_logs(self) -> None:
        """Every container's output into test-artifacts/<project>/, for a failure that happens now and then."""
        folder = ROOT / "test-artifacts" / self.project
        folder.mkdir(parents=True, exist_ok=True)
        for container in self.containers():
            result = podman("logs", "--tail", "300", container["Name"], check=False)
            (folder / f"{container['Name']}.log").write_text(result.stdout + result.stderr)

    def leftovers(self) -> list[str]:
        """What of this stack still exists: containers, volumes, its network."""
        label = f"--filter=label=com.docker.compose.project={self.project}"
        containers = podman("ps", "-a", label, "--format={{.Names}}").stdout.split()
        volumes = podman("volume", "ls", label, "--format={{.Name}}").stdout.split()
        networks = [
            name
            for name in podman("network", "ls", "--format={{.Name}}").stdout.split()
            if name.startswith(f"{self.project}_")
        ]
        found = [f"container {name}" for name in containers] + [f"volume {name}" for name in volumes]
        found += [f"network {name}" for name in networks]
        return found


def health(container: dict[str, Any]) -> str:
    state = container["State"]
    return str((state.get("Health") or state.get("Healthcheck") or {}).get("Status", ""))


def replica_of(reply: loopback.Reply) -> str:
    """The web container that answered: X-Served-By is `hostname:pid`, and a container's hostname is its id."""
    return reply.served_by.split(":")[0]


@contextmanager
def running_stack(*, cluster: bool, port: int) -> Iterator[ComposeStack]:
    """A stack of the test's own, up with 3 web replicas; at the end it is taken down with its volumes,
    and nothing of it may remain."""
    project = f"shopcart-{'cluster-' if cluster else ''}test-{port}"
    env = {key: value for key, value in os.environ.items() if key not in SUBSTITUTED}
    env |= {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "HTTP_PORT": f"127.0.0.1:{port}",  # nginx published on loopback only
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }
    stack = ComposeStack(cluster=cluster, project=project, port=port, env=env)
    if stack.leftovers():  # of an interrupted earlier run
        stack.down(volumes=True)
    try:
        stack.up()
        yield stack
    finally:
        stack.save_logs()
        stack.down(volumes=True)
        assert stack.leftovers() == [], stack.leftovers()


@pytest.fixture(scope="session")
def compose_images() -> None:
    """The web image and the stand-ins, built once per run (`make test` has built them already: then
    this takes seconds)."""
    compose_py("images")
