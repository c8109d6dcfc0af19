"""The cart index: one document per owner, addressed only through the alias `<prefix>-carts`.

The document id is the cart id: `user-<user id>` for a signed-in user, `anon-<random id>` for an
anonymous session (the random id lives in the session, see cart.owners). Reads are real-time GETs by
that id and writes are conditional on the `_seq_no`/`_primary_term` the GET returned (cart.services),
so the mapping only has to serve operators' ad-hoc queries; nothing in the app searches carts.
"""

from __future__ import annotations

from elasticsearch import BadRequestError, Elasticsearch
from elasticsearch_dsl import (
    Boolean,
    Date,
    Document,
    Double,
    InnerDoc,
    Integer,
    Keyword,
    Long,
    MetaField,
    Nested,
    Object,
    Text,
)

from shopcart import es

CARTS = "carts"
# The physical index behind the alias. A fixed name (not a timestamp) makes creating it idempotent and
# race-free across replicas: the second creator gets "already exists" and both point the alias at it.
PHYSICAL_SUFFIX = "v1"


def carts_alias() -> str:
    return es.index_name(CARTS)


class CartLine(InnerDoc):
    productId = Keyword()  # the API's field name, kept in the document for operators
    sku = Keyword()
    name = Text(fields={"raw": Keyword(ignore_above=256)})
    # The unit price when the line was first added, in minor units; the summary compares it with the
    # current catalog price to flag a change.
    unit_price_cents = Long()
    currency = Keyword()
    quantity = Integer()
    added_at = Date()


class CartDocument(Document):
    # "user" or "anonymous"; user_id is set for user carts only.
    kind = Keyword()
    user_id = Keyword()
    currency = Keyword()
    lines = Nested(CartLine)
    created_at = Date()
    updated_at = Date()
    # An anonymous cart being merged at login holds the claimed lines here until the merge finishes
    # (cart.services.merge_anonymous_cart); stored, not indexed.
    pending_merge = Object(enabled=False)
    # Ids of merge claims already applied to this (user) cart, so a retried merge never adds twice.
    applied_merges = Keyword()
    # The events of acknowledged changes that JetStream has not acknowledged yet, written in the same
    # write as the change (the cart is its own outbox, cart.events); stored, not indexed.
    pending_events = Object(enabled=False)
    # True while pending_events is not empty: what the relay searches for.
    has_pending_events = Boolean()
    # Recent write operations ({id, at, key?, fp?}): how a write whose answer was lost learns whether it
    # was applied, and how an Idempotency-Key is recognised (cart.services); stored, not indexed.
    ops = Object(enabled=False)
    # The newest `at` of an operation dropped from `ops` by the count cap (not by age): an operation
    # started before it may have been dropped, so its absence proves nothing.
    ops_dropped_until = Double()

    class Meta:
        dynamic = MetaField("strict")

    class Index:
        name = "carts-unused"  # overridden with the physical name when the index is created
        settings = {"number_of_shards": 1}  # replicas: es.replica_settings, from the environment


_ensured: set[str] = set()


def cart_writer() -> Elasticsearch:
    """The client for cart writes: no transport-level retry. A conditional write re-sent by the transport
    after a dropped connection would come back as a conflict with our own write; the services resolve a
    lost answer themselves, by the operation id recorded in the document."""
    return es.client_with(max_retries=0)


def ensure_cart_index() -> bool:
    """Create the physical cart index and its alias unless they exist. True if this call created them.

    Writes never target a missing alias: Elasticsearch would auto-create a concrete index named like
    the alias, with a guessed mapping, and the alias could then never be added.
    """
    alias = carts_alias()
    if alias in _ensured:
        return False
    client, admin = es.client(), es.admin_client()
    created = False
    if not client.indices.exists_alias(name=alias):
        physical = f"{alias}-{PHYSICAL_SUFFIX}"
        try:
            CartDocument._index.clone(physical).settings(**es.replica_settings()).create(using=admin)
            created = True
        except BadRequestError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise
        admin.indices.put_alias(index=physical, name=alias)
        # A process that lost the create race must not write before the primary shard is active
        # (Elasticsearch would answer 503); waiting for yellow covers winner and losers alike.
        admin.cluster.health(index=alias, wait_for_status="yellow", timeout="30s")
    if not created:
        # The mapping is strict: an index made by older code gets the newer fields (adding fields to a
        # live index changes nothing else, and sending the existing ones again is a no-op).
        admin.indices.put_mapping(index=alias, properties=CartDocument._doc_type.mapping.to_dict()["properties"])
    _ensured.add(alias)
    return created
