"""Every Elasticsearch availability error is the dependency-down 503, decided in one place
(shopcart.es.is_unavailable, asked by shopcart.errors.unavailable_dependency): a node that died behind
the coordinating node answers `ApiError(502, 'node_not_connected_exception')`, which was a 500."""

from __future__ import annotations

from typing import Any

import elastic_transport
import pytest
from django.test import Client
from elasticsearch import ApiError, BadRequestError, ConflictError, NotFoundError

from cart import selectors
from shopcart import es
from shopcart.errors import unavailable_dependency
from tests.test_cart_support import api_client, make_user


def _api_error(cls: type[ApiError], status: int, error_type: str) -> ApiError:
    meta = elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders(),
        duration=0.0,
        node=elastic_transport.NodeConfig("http", "127.0.0.1", 9200),
    )
    body = {"error": {"type": error_type, "reason": "test", "root_cause": [{"type": error_type}]}, "status": status}
    return cls(error_type, meta=meta, body=body)


UNAVAILABLE = [
    elastic_transport.ConnectionError("refused"),
    elastic_transport.ConnectionTimeout("timed out"),
    elastic_transport.TlsError("handshake"),
    _api_error(ApiError, 502, "node_not_connected_exception"),
    _api_error(ApiError, 503, "no_shard_available_action_exception"),
    _api_error(ApiError, 503, "unavailable_shards_exception"),
    _api_error(ApiError, 504, "timeout"),
    _api_error(ApiError, 503, "master_not_discovered_exception"),
    _api_error(ApiError, 403, "cluster_block_exception"),  # a read-only (flood-stage) index answers 403
    _api_error(ApiError, 500, "node_disconnected_exception"),
]
NOT_UNAVAILABLE = [
    _api_error(BadRequestError, 400, "mapper_parsing_exception"),
    _api_error(NotFoundError, 404, "index_not_found_exception"),
    _api_error(ConflictError, 409, "version_conflict_engine_exception"),
    _api_error(ApiError, 500, "illegal_state_exception"),
    elastic_transport.SerializationError("bad JSON"),
    ValueError("not Elasticsearch"),
]


@pytest.mark.parametrize("exc", UNAVAILABLE, ids=repr)
def test_availability_errors_mean_elasticsearch_is_down(exc: Exception) -> None:
    assert es.is_unavailable(exc)
    assert unavailable_dependency(exc) == "elasticsearch"


@pytest.mark.parametrize("exc", NOT_UNAVAILABLE, ids=repr)
def test_other_errors_are_not_an_outage(exc: Exception) -> None:
    assert not es.is_unavailable(exc)
    assert unavailable_dependency(exc) is None


@pytest.mark.django_db
def test_a_node_not_connected_on_the_cart_read_is_503_on_the_api_and_the_page(monkeypatch: Any) -> None:
    client = api_client(make_user())
    browser = Client(raise_request_exception=False)  # as served: through handler500
    browser.post("/cart/add", {"product_id": "any-product"})  # a session with a guest cart id

    def node_not_connected(*, cart_id: str, timeout: float | None = None) -> Any:
        raise _api_error(ApiError, 502, "node_not_connected_exception")

    monkeypatch.setattr(selectors, "get_cart", node_not_connected)

    response = client.get("/api/user/cart")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "elasticsearch" in response.json()["error"]["message"]
    page = browser.get("/cart/")
    assert page.status_code == 503
    assert "(elasticsearch) is not responding" in page.content.decode()
