"""The product index. Its mapping is explicit (dynamic: strict), and the app only ever addresses the
alias `<prefix>-products`, never a physical index, so a reindex into a new physical index can swap
the alias atomically with no downtime (see catalog.indexes).

The mapping carries its version (`_meta.mapping_version`): a change to the fields or analyzers below
bumps MAPPING_VERSION, and `manage.py seed` (thus `make run`) reindexes an index of an older version
into a new one (catalog.indexes.upgrade_product_index)."""

from __future__ import annotations

from elasticsearch_dsl import Boolean, Date, Document, Integer, Keyword, Long, MetaField, Text, analyzer

from shopcart import es

PRODUCTS = "products"
# 2: prefixes of name words (as-you-type search), no stop words in descriptions (docs/adr/0008).
MAPPING_VERSION = 2
# The shortest and longest beginnings of a name word indexed for prefix search: "te" to "telescope"
# (a longer beginning is still found, by a slower prefix query; Elasticsearch allows at most 19).
PREFIX_MIN_CHARS = 2
PREFIX_MAX_CHARS = 15

# Descriptions without "and", "the", "with"...: a word every description has finds nothing useful. Built
# from the standard analyzer, which the local server has (docs/adr/0001). Names keep every word.
prose = analyzer("prose", "standard", stopwords="_english_")


def products_alias() -> str:
    return es.index_name(PRODUCTS)


class ProductDocument(Document):
    # The document _id is the product id (the lower-cased SKU), so a SKU can exist only once.
    sku = Keyword()
    # `words` splits at every non-letter, so "chef" finds "Chef's Knife", and indexes the beginnings of
    # those words for prefix search ("tele" finds "Telescope"); the main field keeps digits ("1000 pieces").
    name = Text(
        fields={
            "raw": Keyword(normalizer="lowercase"),
            "words": Text(
                analyzer="simple", index_prefixes={"min_chars": PREFIX_MIN_CHARS, "max_chars": PREFIX_MAX_CHARS}
            ),
        }
    )
    description = Text(analyzer=prose)
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
        meta = MetaField(mapping_version=MAPPING_VERSION)

    class Index:
        # Overridden per call with the alias; the settings are what a new physical index gets (replicas:
        # es.replica_settings, from the environment).
        name = "products-unused"
        settings = {"number_of_shards": 1}
