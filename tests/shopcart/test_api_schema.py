"""Property-based API testing with schemathesis: generated requests for every operation in the
OpenAPI schema (bounded), against the real services. No response may be a 5xx, and every response
must match the schema (status code documented, body shaped as documented)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import issue_token
from shopcart.wsgi import application

# Examples per operation; about a dozen operations make roughly 1 000 cases in all.
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "80"))

# What the API promises: no 5xx, only documented status codes, bodies and headers as documented, and
# requests that break the schema refused. (Schema-valid data may still be refused by business rules
# — a common password, an unknown product — so "positive data acceptance" is not one of them.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture(scope="module")
def schema_catalog(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The demo catalog in an index prefix of this module's own."""
    prefix = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-schema{uuid.uuid4().hex[:6]}"
    with override_settings(ELASTICSEARCH_INDEX_PREFIX=prefix), django_db_blocker.unblock():
        call_command("seed", stdout=open(os.devnull, "w"))  # noqa: SIM115
        yield prefix


@pytest.fixture
def api_token(schema_catalog: str, transactional_db: None) -> str:
    """A real user's Bearer token, for one operation's cases. Made per test: each test's end empties the
    tables without a model signal, so a user made once per module would be gone from the database while
    the auth cache still vouched for it (and a change to one's own account, PATCH /api/me, would find no
    row). Its password is unusable: no generated case can change the password, email or delete it."""
    from accounts.models import User

    user = User.objects.create_user(email=f"fuzz-{uuid.uuid4().hex[:6]}@example.com", password=None, name="Fuzz")
    return issue_token(user=user).auth_token


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run, so a failure reproduces
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, api_token: str) -> None:
    # Logout would revoke the shared token and turn every later case into a 401.
    if case.path == "/api/logout":
        case.headers = {**(case.headers or {}), "Authorization": "Bearer not-a-token"}
    elif case.operation.security or "/user/" in case.path or case.path == "/api/me":
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {api_token}"}
    case.call_and_validate(checks=CHECKS)
