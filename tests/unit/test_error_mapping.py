"""Error mapping, without services: which exceptions mean a dependency is down (one place:
shopcart.es.is_unavailable, asked by shopcart.http_errors.unavailable_dependency), and each domain error
kind's status code and JSON body (shopcart.http_errors)."""

from __future__ import annotations

import json
from pathlib import Path

import django.db
import elastic_transport
import pytest
import redis.exceptions
import urllib3
from elasticsearch import ApiError, BadRequestError, ConflictError, NotFoundError

from accounts.errors import EmailTaken, InvalidCredentials, LoginThrottled
from cart.errors import CartBusy, CartOutcomeUnknown, IdempotencyKeyReused, LineNotFound, OutOfStock
from catalog.errors import ProductNotFound
from shopcart import errors, es
from shopcart.eventbus import EventBusUnavailable
from shopcart.http_errors import (
    STATUS_FOR_KIND,
    domain_error_response,
    status_for,
    unavailable_dependency,
    unavailable_message,
)
from tests.support.es import api_error

UNAVAILABLE = [
    elastic_transport.ConnectionError("refused"),
    elastic_transport.ConnectionTimeout("timed out"),
    elastic_transport.TlsError("handshake"),
    api_error(ApiError, 502, "node_not_connected_exception"),
    api_error(ApiError, 503, "no_shard_available_action_exception"),
    api_error(ApiError, 503, "unavailable_shards_exception"),
    api_error(ApiError, 504, "timeout"),
    api_error(ApiError, 503, "master_not_discovered_exception"),
    api_error(ApiError, 403, "cluster_block_exception"),  # a read-only (flood-stage) index answers 403
    api_error(ApiError, 500, "node_disconnected_exception"),
]
NOT_UNAVAILABLE = [
    api_error(BadRequestError, 400, "mapper_parsing_exception"),
    api_error(NotFoundError, 404, "index_not_found_exception"),
    api_error(ConflictError, 409, "version_conflict_engine_exception"),
    api_error(ApiError, 500, "illegal_state_exception"),
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


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (redis.exceptions.ConnectionError("refused"), "redis"),
        (redis.exceptions.TimeoutError("slow"), "redis"),
        (EventBusUnavailable("no ack"), "nats"),
        (django.db.OperationalError("connection refused"), "database"),
        (django.db.OperationalError("server is in hot standby mode"), "database"),
        (django.db.InterfaceError("connection already closed"), "database"),
    ],
    ids=repr,
)
def test_redis_nats_and_database_failures_are_outages_too(exc: Exception, name: str) -> None:
    assert unavailable_dependency(exc) == name


def test_a_database_outage_does_not_claim_that_nothing_was_changed() -> None:
    """A commit whose answer was lost may have been applied; other services' 503s are sure of it."""
    assert "Nothing was changed" not in unavailable_message("database")
    assert "Nothing was changed" in unavailable_message("redis")


def test_no_exception_is_no_outage() -> None:
    assert unavailable_dependency(None) is None


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.Invalid("x"), 400),
        (errors.NotAuthenticated("x"), 401),
        (errors.Forbidden("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.Unprocessable("x"), 422),
        (errors.Throttled("x", retry_after=1), 429),
        (errors.Unavailable("x"), 503),
        (errors.DomainError("a kind of its own"), 400),
        # Each app's errors get the status of their kind.
        (OutOfStock("Only 2 left.", available=2), 400),
        (InvalidCredentials("No."), 401),
        (ProductNotFound("Gone."), 404),
        (LineNotFound("Not in the cart."), 404),
        (EmailTaken("Taken."), 409),
        (CartBusy("Busy."), 409),
        (IdempotencyKeyReused("Reused."), 422),
        (LoginThrottled("Wait.", retry_after=60), 429),
        (CartOutcomeUnknown("Unknown."), 503),
    ],
    ids=repr,
)
def test_each_kind_has_its_status(error: errors.DomainError, status: int) -> None:
    assert status_for(error) == status
    assert domain_error_response(error).status_code == status


def test_every_kind_is_in_the_status_table() -> None:
    kinds = {kind for kind in vars(errors).values() if isinstance(kind, type) and issubclass(kind, errors.DomainError)}
    assert kinds - {errors.DomainError} == set(STATUS_FOR_KIND)


def test_the_error_body_is_the_one_shape() -> None:
    response = domain_error_response(OutOfStock("Only 2 left.", available=2))
    assert json.loads(response.content) == {
        "error": {"code": "out_of_stock", "message": "Only 2 left.", "fields": {"quantity": ["Only 2 left."]}}
    }
    assert "Retry-After" not in response
    assert json.loads(domain_error_response(CartBusy("Busy.")).content) == {
        "error": {"code": "cart_busy", "message": "Busy."}
    }


def test_throttled_and_unavailable_say_when_to_retry() -> None:
    assert domain_error_response(LoginThrottled("Wait.", retry_after=42))["Retry-After"] == "42"
    assert domain_error_response(CartOutcomeUnknown("Retry."))["Retry-After"] == "5"


def test_the_kinds_module_needs_no_http() -> None:
    """shopcart/errors.py is plain Python: services can raise its kinds without Django's HTTP, ninja or NATS."""
    source = Path(errors.__file__).read_text()
    assert "import" not in source.replace("from __future__ import annotations", "")


def _refused() -> elastic_transport.ConnectionError:
    cause = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    try:
        raise elastic_transport.ConnectionError(str(cause)) from cause
    except elastic_transport.ConnectionError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "never_sent"),
    [
        pytest.param(_refused(), True, id="connection-refused"),
        pytest.param(elastic_transport.ConnectionError("reset", errors=(ConnectionRefusedError(),)), True, id="errno"),
        pytest.param(elastic_transport.ConnectionError("connection reset by peer"), False, id="reset"),
        pytest.param(elastic_transport.ConnectionTimeout("read timed out"), False, id="read-timeout"),
        pytest.param(api_error(ApiError, 502, "node_not_connected_exception"), False, id="502"),
    ],
)
def test_only_a_connection_never_opened_proves_a_write_was_not_applied(exc: Exception, never_sent: bool) -> None:
    assert es.never_sent(exc) is never_sent
