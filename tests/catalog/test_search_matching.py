"""How search matches and ranks (issue 17, item 13; docs/adr/0008), against the real Elasticsearch:
partial words as they are typed, plurals and singulars, whole words before plurals, prefixes and typos,
stop words, the suggestion list's API, and the reindex that gives an existing index the new mapping."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from catalog import indexes, selectors, services
from catalog.documents import MAPPING_VERSION, products_alias
from shopcart import es
from tests.support import catalog as catalog_support

pytestmark = pytest.mark.django_db


def names(query: str, **options: Any) -> list[str]:
    return [product.name for product in selectors.search_products(query=query, page_size=100, **options).items]


def add(name: str, *, description: str = "", category: str = "Home", active: bool = True) -> selectors.Product:
    data = catalog_support.product_input(
        sku_prefix="M", name=name, description=description, category=category, active=active
    )
    return services.create_product(data=data)


# --- the demo catalog: what the issue found ------------------------------------------------------------


@pytest.mark.parametrize("typed", ["tele", "teles", "telesc", "telescop", "Telescope", "telescopes"])
def test_a_word_is_found_while_it_is_typed(catalog: str, typed: str) -> None:
    found = names(typed)
    assert len(found) == 3
    assert all(name.endswith("Brass Telescope") for name in found)


def test_a_plural_ranks_the_products_named_with_its_singular_first(catalog: str) -> None:
    found = names("trains")
    assert found[:3] == ["Alder Everyday Toy Train Set", "Alder Pro Toy Train Set", "Alder Pro Toy Train Set"]
    # "trails" is one letter off: still found, as a typo, but after every whole word.
    assert set(found[3:]) == {name for name in names("trails") if "Trails" in name}


def test_a_stop_word_alone_finds_no_description_and_beside_other_words_is_not_required(catalog: str) -> None:
    assert selectors.search_products(query="AND").total == 0  # "and" is in 60 descriptions
    assert selectors.search_products(query="the").total == 0
    assert names("telescope and") == names("telescope")
    assert names("the telescope") == names("telescope")


def test_typo_rules_still_hold_beside_prefixes(catalog: str) -> None:
    assert len(names("telscope")) == 3  # two edits in 8 letters
    assert names("lxntxrn") == []  # two edits in 7 letters: no
    assert names("mxt") == []  # 3 letters, one edit: no ("mat" is a word)
    assert names("antern") == []  # the first letter as typed


def test_only_the_last_word_is_a_prefix(catalog: str) -> None:
    assert len(names("brass tele")) == 3
    assert names("tele brass") == []  # "tele" is finished there: no word "tele", nor one edit from it


# --- a catalog of its own: each rule alone -------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("batteries", "AA Battery"),
        ("battery", "AAA Batteries"),
        ("boxes", "Wooden Toy Box"),
        ("knives", "Paring Knife"),
        ("shelf", "Floating Shelves"),
        ("glass", "Reading Glasses"),
    ],
)
def test_plurals_and_singulars_find_each_other(empty_catalog: str, query: str, name: str) -> None:
    add(name)
    add("Something Else Entirely")
    assert names(query) == [name]


def test_whole_words_rank_before_plurals_prefixes_descriptions_and_typos(empty_catalog: str) -> None:
    add("Limp Noodle Toy")
    add("Reading Light", description="A small lamp for reading.")
    add("Lampshade Cover")
    add("Desk Lamps")
    add("Lamp Shade Deluxe")
    assert names("lamp") == [
        "Lamp Shade Deluxe",  # the word itself, in the name
        "Desk Lamps",  # its plural in the name
        "Lampshade Cover",  # a name word beginning with it
        "Reading Light",  # the word in the description
        "Limp Noodle Toy",  # a typo
    ]


def test_the_whole_query_in_the_name_in_order_ranks_first(empty_catalog: str) -> None:
    add("Prejudice and Pride: Essays")
    add("Pride and Prejudice")
    assert names("pride and prejudice") == ["Pride and Prejudice", "Prejudice and Pride: Essays"]


def test_deactivated_products_are_neither_found_nor_suggested(empty_catalog: str) -> None:
    add("Hidden Samovar", active=False)
    assert names("samo") == []
    assert selectors.suggest_products(query="samo") == []


# --- the suggestions' API ----------------------------------------------------------------------------------


def test_suggestions_are_the_first_products_the_search_lists(catalog: str) -> None:
    response = Client().get("/api/suggestions", {"q": "tele"})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "tele"
    assert [item["name"] for item in body["suggestions"]] == names("tele")
    first = body["suggestions"][0]
    assert set(first) == {"id", "name", "category", "url"}
    assert first["url"] == f"http://testserver/products/{first['id']}"
    assert Client().get(first["url"]).status_code == 200

    many = Client().get("/api/suggestions", {"q": "toy", "limit": 4}).json()["suggestions"]
    assert [item["name"] for item in many] == names("toy")[:4]


@pytest.mark.parametrize("typed", ["", "t", " t ", "zzzzzz"])
def test_too_little_or_nothing_found_is_an_empty_list(catalog: str, typed: str) -> None:
    response = Client().get("/api/suggestions", {"q": typed})
    assert response.status_code == 200
    assert response.json() == {"query": typed.strip(), "suggestions": []}


@pytest.mark.parametrize("bad", [{"limit": "0"}, {"limit": "11"}, {"limit": "x"}, {"q": "x" * 201}])
def test_bad_suggestion_parameters_are_400_with_the_field(catalog: str, bad: dict[str, str]) -> None:
    response = Client().get("/api/suggestions", {"q": "tele", **bad})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(bad)


def test_every_page_has_the_search_box_that_asks_for_suggestions_and_works_without_them(catalog: str) -> None:
    html = Client().get("/products/kit-0001").content.decode()
    assert 'action="/search"' in html
    assert 'data-suggest-url="/api/suggestions"' in html
    assert "shopcart/search-suggestions.js" in html
    assert "<script>" not in html  # no inline script: the page's policy may forbid them
    assert "Brass Telescope" in Client().get("/search", {"q": "tele"}).content.decode()


# --- an index made before this mapping: reindexed, the alias swapped ------------------------------------


LEGACY_MAPPING = {  # the product mapping before MAPPING_VERSION 2, as such indices were created
    "dynamic": "strict",
    "properties": {
        "sku": {"type": "keyword"},
        "name": {
            "type": "text",
            "fields": {
                "raw": {"type": "keyword", "normalizer": "lowercase"},
                "words": {"type": "text", "analyzer": "simple"},
            },
        },
        "description": {"type": "text"},
        "category": {"type": "keyword", "fields": {"text": {"type": "text"}}},
        "price_cents": {"type": "long"},
        "currency": {"type": "keyword"},
        "stock": {"type": "integer"},
        "image_url": {"type": "keyword", "index": False},
        "active": {"type": "boolean"},
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
    },
}


def test_seed_gives_an_index_of_an_older_mapping_the_current_one(empty_catalog: str) -> None:
    legacy = f"{products_alias()}-legacy"
    es.client().indices.create(index=legacy, mappings=LEGACY_MAPPING, settings={"number_of_shards": 1})
    es.client().indices.put_alias(index=legacy, name=products_alias())
    services.bulk_load_products(products=[{"id": "old-1", **_fields("Old Brass Telescope")}])
    assert indexes.mapping_version() == 0
    assert "_index_prefix" not in _prefix_query_plan("tele")  # a walk over every term of the field

    call_command("seed", "--if-empty", stdout=None)  # what `make run` does with a catalog

    assert indexes.mapping_version() == MAPPING_VERSION
    assert legacy not in indexes.physical_indices()
    assert not es.client().indices.exists(index=legacy)
    assert _prefix_query_plan("tele") == "ConstantScore(name.words._index_prefix:tele)"  # one term
    assert names("tele") == ["Old Brass Telescope"]
    assert selectors.get_product(product_id="old-1").name == "Old Brass Telescope"
    call_command("seed", "--if-empty", stdout=None)
    assert len(indexes.physical_indices()) == 1  # current: not reindexed again


def test_a_write_during_the_copy_reaches_the_new_index(empty_catalog: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staff edit that lands in the old index while the copy runs is copied again after the swap; one
    made after the swap (newer) is not overwritten by the old index's copy."""
    services.bulk_load_products(
        products=[{"id": "edit-1", **_fields("Copper Kettle")}, {"id": "edit-2", **_fields("Iron Skillet")}]
    )
    real_copy = indexes._copy

    def copy_then_edit(documents: Any, *, into: str) -> int:
        copied = real_copy(documents, into=into)
        # Through the alias, which still points at the old index: what a staff edit does meanwhile.
        product = selectors.get_product(product_id="edit-1", use_cache=False)
        services.update_product(product_id="edit-1", data=catalog_support.input_of(product, name="Copper Kettle v2"))
        return copied

    real_swap = indexes._swap_alias

    def swap_then_edit(*, new: str, old: list[str]) -> None:
        real_swap(new=new, old=old)
        product = selectors.get_product(product_id="edit-2", use_cache=False)
        services.update_product(product_id="edit-2", data=catalog_support.input_of(product, name="Iron Skillet v2"))

    monkeypatch.setattr(indexes, "_copy", copy_then_edit)
    monkeypatch.setattr(indexes, "_swap_alias", swap_then_edit)
    indexes.reindex_products()

    assert selectors.get_product(product_id="edit-1", use_cache=False).name == "Copper Kettle v2"
    assert selectors.get_product(product_id="edit-2", use_cache=False).name == "Iron Skillet v2"
    assert indexes.mapping_version() == MAPPING_VERSION


def _prefix_query_plan(prefix: str) -> str:
    """How Elasticsearch runs the prefix query on name words, as its query explanation says."""
    answer = es.client().indices.validate_query(
        index=products_alias(), query={"prefix": {"name.words": prefix}}, explain=True
    )
    return str(answer["explanations"][0]["explanation"])


def _fields(name: str) -> dict[str, Any]:
    data = catalog_support.product_input(sku_prefix="L", name=name)
    return services.validate_product_input(data)
