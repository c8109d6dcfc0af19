"""The product index. Its mapping is explicit (dynamic: strict), and the app only ever addresses the
alias `<prefix>-products`, never a physical index, so a reindex into a new physical index can swap
the alias atomically with no downtime (see catalog.indexes)."""

from __future__ import annotations

from elasticsearch_dsl import Boolean, Date, Document, Integer, Keyword, Long, MetaField, Text

from shopcart import es

PRODUCTS = "products"


def products_alias() -> str:
    return es.index_name(PRODUCTS)


class ProductDocument(Document):
    # The document _id is the product id (the lower-cased SKU), so a SKU can exist only once.
    sku = Keyword()
    # `words` splits at every non-letter, so "chef" finds "Chef's Knife" (no stemming analyzers in
    # the local assembly, see docs/adr/0001); the main field keeps digits ("1000 pieces").
    name = Text(fields={"raw": Keyword(normalizer="lowercase"), "words": Text(analyzer="simple")})
    description = Text()
    # keyword for filters and facets; the text sub-field lets full-text search match it too.
    category = Keyword(fields={"text": Text()})
    # Money is stored exactly, as integer minor units (cents); never as a float.
    price_cents = Long()
    currency = Keyword()
    stock = Integer()
    image_url = Keyword(index=False)
    active = Boolean()
    created_at = Date()
    updated_at = Date()

    class Meta:
        dynamic = MetaField("strict")

    class Index:
        # Overridden per call with the alias; the settings are what a new physical index gets (replicas:
        # es.replica_settings, from the environment).
        name = "products-unused"
        settings = {"number_of_shards": 1}
