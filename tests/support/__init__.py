"""What the test modules share, in one package: helpers are imported from its modules
(`from tests.support.cart import make_product`), never from another test module; its fixtures are
registered for the whole suite by tests/conftest.py (`pytest_plugins`), so no test imports a fixture
by name. The Chromium fixtures are the browser folder's own (tests/browser/conftest.py).

* `api`: the JSON API client (Bearer token, JSON bodies, Idempotency-Key);
* `accounts`: the throttling reset fixture, the pages' CSRF log-in, the mail catcher;
* `cart`: a JetStream stream of the test's own, products, users, carts and the stream's messages;
* `catalog`: the shipped catalog seeded under a prefix of a module's own, product input;
* `browser`: screenshots and the log-in of the browser tests;
* `es`: Elasticsearch errors as the client raises them;
* `gunicorn`: a real gunicorn in a subprocess; `stack`: stop and start the local services;
* `http`: HTTP over loopback to real servers (nginx), cookies and forms as a browser sends them;
* `compose`: the compose stacks on Podman (devstack/compose.py), brought up, inspected and removed;
* `polling`: waiting for a condition, or for a bounded quiet period."""

from __future__ import annotations

import uuid
from pathlib import Path

# The repository's root: manage.py, devstack/, docs/.
ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
