"""Every Elasticsearch availability error is the dependency-down 503, decided in one place
(shopcart.es.is_unavailable, asked by shopcart.http_errors.unavailable_dependency): a node that died behind
the coordinating node answers `ApiError(502, 'node_not_connected_exception')`, which was a 500. Which errors
count as an outage is unit-tested in tests/unit/test_error_mapping.py; here, what the API and pages answer."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from elasticsearch import ApiError

from cart import selectors
from tests.support.api import api_client
from tests.support.cart import make_user
from tests.support.es import api_error


@pytest.mark.django_db
def test_a_node_not_connected_on_the_cart_read_is_503_on_the_api_and_the_page(monkeypatch: Any) -> None:
    client = api_client(make_user())
    browser = Client(raise_request_exception=False)  # as served: through handler500
    browser.post("/cart/add", {"product_id": "any-product", "quantity": "1"})  # a session with a guest cart id

    def node_not_connected(*, cart_id: str, timeout: float | None = None) -> Any:
        raise api_error(ApiError, 502, "node_not_connected_exception")

    monkeypatch.setattr(selectors, "read_cart", node_not_connected)

    response = client.get("/api/user/cart")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "elasticsearch" in response.json()["error"]["message"]
    page = browser.get("/cart/")
    assert page.status_code == 503
    assert "(elasticsearch) is not responding" in page.content.decode()
