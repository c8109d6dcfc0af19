"""A client written for the original (docs/original-api.md) against the real services: its request
sequence (register, log in, add to the cart, read the cart) with the bodies it sent (JSON, URL-encoded
or multipart forms) and, under /api/v0/, the answers in its envelope
`{"success": true, "message", "payload"}` / `{"success": "false", "message", "payload": {}}`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from catalog.selectors import Product
from tests.support.cart import make_product, wipe_cart

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env", "fresh_throttles")]

PASSWORD = "plum-orchard-91"
ENCODINGS = ["json", "urlencoded", "multipart"]


@pytest.fixture(scope="module")
def product() -> Product:
    return make_product(price="12.50", stock=20)


def send(client: Client, method: str, path: str, body: dict[str, Any], encoding: str, **extra: Any) -> Any:
    """A request as the original's clients sent it: a JSON body, or a form whose fields are all text."""
    if encoding == "json":
        return client.generic(method, path, data=json.dumps(body), content_type="application/json", **extra)
    text = {name: str(value) for name, value in body.items()}
    if encoding == "urlencoded":
        from urllib.parse import urlencode

        return client.generic(
            method, path, data=urlencode(text), content_type="application/x-www-form-urlencoded", **extra
        )
    return client.generic(method, path, data=encode_multipart(BOUNDARY, text), content_type=MULTIPART_CONTENT, **extra)


def envelope(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"success", "message", "payload"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_originals_request_sequence_in_its_envelope(encoding: str, product: Product) -> None:
    client = Client()
    email = f"orig-{uuid.uuid4().hex[:8]}@example.com"

    registered = send(
        client, "POST", "/api/v0/register", {"name": "Orig", "email": email, "password": PASSWORD}, encoding
    )
    assert registered.status_code == 201, registered.content
    body = envelope(registered)
    assert body["success"] is True
    assert body["payload"]["email"] == email
    wipe_cart(f"user-{body['payload']['id']}")  # user ids restart after each test's rollback

    logged_in = send(client, "POST", "/api/v0/login", {"email": email, "password": PASSWORD}, encoding)
    assert logged_in.status_code == 200, logged_in.content
    body = envelope(logged_in)
    assert body["success"] is True
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {body['payload']['auth_token']}"}

    for _ in range(2):  # the second add merges into the line
        added = send(client, "POST", "/api/v0/user/cart", {"productId": product.id, "quantity": 2}, encoding, **bearer)
        assert added.status_code == 200, added.content
        assert envelope(added)["success"] is True

    products = client.get("/api/v0/products")
    assert products.status_code == 200
    assert envelope(products)["success"] is True
    assert {"items", "total", "page", "page_size"} <= set(products.json()["payload"])

    summary = client.get("/api/v0/user/cart", **bearer)
    assert summary.status_code == 200
    body = envelope(summary)
    assert body["success"] is True
    assert [(line["productId"], line["quantity"]) for line in body["payload"]["lines"]] == [(product.id, 4)]
    assert body["payload"]["subtotal"] == "50.00"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_errors_in_the_originals_envelope_keep_their_status(encoding: str, product: Product) -> None:
    client = Client()
    email = f"orig-{uuid.uuid4().hex[:8]}@example.com"
    user = {"name": "Orig", "email": email, "password": PASSWORD}
    registered = send(client, "POST", "/api/v0/register", user, encoding)
    assert registered.status_code == 201
    wipe_cart(f"user-{registered.json()['payload']['id']}")

    cases = [
        (send(client, "POST", "/api/v0/register", user, encoding), 409),
        (send(client, "POST", "/api/v0/login", {"email": email, "password": "wrong"}, encoding), 401),
        (send(client, "POST", "/api/v0/user/cart", {"productId": product.id, "quantity": 1}, encoding), 401),
        (client.get("/api/v0/register"), 405),
    ]
    token = send(client, "POST", "/api/v0/login", {"email": email, "password": PASSWORD}, encoding).json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token['payload']['auth_token']}"}
    for quantity in (0, "two", -1):
        bad = send(
            client, "POST", "/api/v0/user/cart", {"productId": product.id, "quantity": quantity}, encoding, **bearer
        )
        cases.append((bad, 400))
    for response, status in cases:
        assert response.status_code == status, response.content
        body = envelope(response)
        assert body["success"] == "false"
        assert body["payload"] == {}
    assert cases[3][0]["Allow"] == "POST"
    assert client.get("/api/v0/user/cart", **bearer).json()["payload"]["lines"] == []


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_form_bodies_are_read_on_the_unprefixed_routes_too(encoding: str, product: Product) -> None:
    client = Client()
    email = f"form-{uuid.uuid4().hex[:8]}@example.com"
    registered = send(client, "POST", "/api/register", {"name": "Form", "email": email, "password": PASSWORD}, encoding)
    assert registered.status_code == 201
    assert registered.json() == {"id": registered.json()["id"], "name": "Form", "email": email}
    wipe_cart(f"user-{registered.json()['id']}")
    token = send(client, "POST", "/api/login", {"email": email, "password": PASSWORD}, encoding).json()["auth_token"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    added = send(client, "POST", "/api/user/cart", {"productId": product.id, "quantity": 3}, encoding, **bearer)
    assert added.status_code == 200, added.content
    assert added.json()["itemCount"] == 3
    # A form's "3" is 3, but a JSON body still sends numbers as numbers.
    strict = send(client, "POST", "/api/user/cart", {"productId": product.id, "quantity": "3"}, "json", **bearer)
    assert strict.status_code == 400
    assert "quantity" in strict.json()["error"]["fields"]
