"""Elasticsearch errors as its client raises them, for tests of what an outage or a refusal maps to."""

from __future__ import annotations

import elastic_transport
from elasticsearch import ApiError


def api_error(cls: type[ApiError], status: int, error_type: str) -> ApiError:
    meta = elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders(),
        duration=0.0,
        node=elastic_transport.NodeConfig("http", "127.0.0.1", 9200),
    )
    body = {"error": {"type": error_type, "reason": "test", "root_cause": [{"type": error_type}]}, "status": status}
    return cls(error_type, meta=meta, body=body)
