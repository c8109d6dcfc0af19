"""shopcart.es.client_with: a client with other transport options is made once per base client (no
Elasticsearch needed: making one connects nowhere)."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from shopcart import es


def test_a_variant_is_made_once_and_again_for_a_new_base_client(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = es.client_with(max_retries=0)
    assert es.client_with(max_retries=0) is writer
    assert es.client_with(max_retries=0, request_timeout=1.5) is not writer

    other_base = Elasticsearch("http://127.0.0.1:9200")  # as when the app is pointed elsewhere
    monkeypatch.setattr(es, "client", lambda: other_base)
    assert es.client_with(max_retries=0) is not writer
