"""Moving the carts to a new mapping (`manage.py cart_reindex`): a new physical index, the documents
copied while cart writes are refused, the alias swapped. A write that starts from a version read in the
old index (its last known version in Redis) is refused there and made in the new one; nothing is lost or
doubled. On the real Elasticsearch, in indices of the test's own."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from cart import documents, events, selectors, services, versions
from shopcart import es
from tests.support import unique
from tests.support.cart import make_product, stream_messages

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cart_events_env")]

# The carts' first mapping (before issue 18): every line a nested document with an analysed name.
MAPPING_V1 = {
    "dynamic": "strict",
    "properties": {
        "kind": {"type": "keyword"},
        "user_id": {"type": "keyword"},
        "currency": {"type": "keyword"},
        "lines": {
            "type": "nested",
            "properties": {
                "productId": {"type": "keyword"},
                "sku": {"type": "keyword"},
                "name": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
                "unit_price_cents": {"type": "long"},
                "currency": {"type": "keyword"},
                "quantity": {"type": "integer"},
                "added_at": {"type": "date"},
            },
        },
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
        "pending_merge": {"type": "object", "enabled": False},
        "applied_merges": {"type": "keyword"},
        "pending_events": {"type": "object", "enabled": False},
        "has_pending_events": {"type": "boolean"},
        "ops": {"type": "object", "enabled": False},
        "ops_dropped_until": {"type": "double"},
    },
}


@pytest.fixture
def old_carts_index(settings: Any) -> str:
    """A shop whose carts are in the first mapping's index (`<alias>-v1`), as every shop before issue 18."""
    settings.ELASTICSEARCH_INDEX_PREFIX = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-{unique()}"
    old = documents.physical_name(1)
    es.admin_client().indices.create(index=old, mappings=MAPPING_V1, settings={"number_of_shards": 1})
    es.admin_client().indices.put_alias(index=old, name=documents.carts_alias())
    return old


def test_the_carts_move_to_the_new_mapping_and_a_version_of_the_old_index_is_written_in_the_new(
    old_carts_index: str,
) -> None:
    product = make_product(stock=50)
    cart_id = f"anon-{unique()}{unique()}"
    services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)  # the app works on the old index
    assert versions.last_known(cart_id).cart.index == old_carts_index

    out = StringIO()
    call_command("cart_reindex", stdout=out, stderr=StringIO())

    new = documents.physical_name()
    assert f"moved 1 carts to {new}" in out.getvalue()
    assert documents.alias_targets() == [new]
    assert documents.mapping_version(new) == documents.MAPPING_VERSION
    mapping = es.admin_client().indices.get_mapping(index=new)[new]["mappings"]["properties"]
    assert mapping["lines"] == {"type": "object", "enabled": False}
    blocks = es.admin_client().indices.get_settings(index=old_carts_index)[old_carts_index]["settings"]["index"]
    assert blocks["blocks"]["write"] == "true"  # kept, refusing writes, for versions cached from it

    # The last known version still names the old index: the write is refused there, made in the new one.
    assert versions.last_known(cart_id).cart.index == old_carts_index
    written = services.add_item(cart_id=cart_id, product_id=product.id, quantity=1)
    assert written.index == new
    stored = selectors.read_cart(cart_id=cart_id)
    assert (stored.index, stored.line(product.id).quantity) == (new, 2)
    assert [m["event"]["newQuantity"] for m in stream_messages(_stream())] == [1, 2]
    assert len(events.pending_entries(stored)) == 1  # the first event, published, left with this write

    again = StringIO()
    call_command("cart_reindex", stdout=again)
    assert "nothing to do" in again.getvalue()
    with pytest.raises(CommandError, match="CART_VERSION_CACHE_TTL"):
        call_command("cart_reindex", "--drop-old", stdout=StringIO())
    dropped = StringIO()
    call_command("cart_reindex", "--drop-old", "--force", stdout=dropped)
    assert dropped.getvalue().strip() == f"deleted {old_carts_index}"
    assert not es.admin_client().indices.exists(index=old_carts_index)


def _stream() -> str:
    return str(django_settings.CART_EVENTS_STREAM)
