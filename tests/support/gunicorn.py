"""A real gunicorn serving the shop in a subprocess, for tests that need HTTP over real sockets
(concurrency, faults): the test settings, the caller's environment, a database of its own
(tests/support/database.py)."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT
from tests.support.cart import wipe_cart


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manage(*args: str, env: dict[str, str]) -> str:
    """Run `manage.py` with `env`; fails the test with the command's output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def user_with_token(*, env: dict[str, str], email: str) -> tuple[str, str]:
    """Create a user in the (migrated) database `env` names, a gunicorn's own: its id and an API token. Its
    cart starts empty: each such database starts ids at 1, while the carts index is the run's."""
    created = manage(
        "shell",
        "-c",
        "from accounts.models import User; from accounts.services import issue_token; "
        f"u = User.objects.create_user(email={email!r}, password='a-Long-password-1', name='Shopper'); "
        "print(u.pk, issue_token(user=u).auth_token)",
        env=env,
    )
    user_id, token = created.split()[-2:]
    wipe_cart(f"user-{user_id}")
    return user_id, token


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


@contextlib.contextmanager
def gunicorn(*, env: dict[str, str], log_path: Path, start_timeout: float = 60) -> Iterator[int]:
    """Start gunicorn on a free port with `env`, wait until it answers, yield the port, stop it."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(  # our own virtualenv's gunicorn
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "shopcart.wsgi",
                "-c",
                "shopcart/gunicorn_conf.py",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_timeout
            while not _answers(port):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"gunicorn did not start; see {log_path}"
                time.sleep(0.2)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
