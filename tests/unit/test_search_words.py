"""catalog.search_words: how a query is split into words, which are stop words, and the singular and
plural forms a word is searched with (docs/adr/0008), without Elasticsearch (the searches themselves are
proved against the real server in tests/catalog/test_search_matching.py)."""

from __future__ import annotations

import pytest

from catalog.search_words import MAX_QUERY_WORDS, is_stop_word, query_words, word_forms


def test_query_words_split_at_spaces_lower_cased_without_edge_punctuation() -> None:
    assert query_words("  Brass (Telescope),  Chef's KIT-0001 ") == ["brass", "telescope", "chef's", "kit-0001"]
    assert query_words("& -- !!") == []
    assert query_words("") == []


def test_only_the_first_words_count() -> None:
    words = [f"w{n}" for n in range(MAX_QUERY_WORDS + 5)]
    assert query_words(" ".join(words)) == words[:MAX_QUERY_WORDS]


@pytest.mark.parametrize(
    ("word", "stop"), [("and", True), ("the", True), ("with", True), ("andes", False), ("toy", False)]
)
def test_stop_words_are_lucenes_english_list(word: str, stop: bool) -> None:
    assert is_stop_word(word) is stop


@pytest.mark.parametrize(
    ("word", "includes"),
    [
        ("trains", {"trains", "train"}),
        ("train", {"train", "trains"}),
        ("batteries", {"battery"}),
        ("battery", {"batteries"}),
        ("boxes", {"box"}),
        ("box", {"boxes"}),
        ("glasses", {"glass"}),
        ("glass", {"glasses"}),
        ("knives", {"knife"}),
        ("knife", {"knives"}),
        ("shelves", {"shelf"}),
        ("shelf", {"shelves"}),
        ("shoes", {"shoe"}),
        ("gloves", {"glove"}),
        ("toy", {"toys"}),
        ("toys", {"toy"}),
    ],
)
def test_a_word_is_searched_with_its_singular_and_plural(word: str, includes: set[str]) -> None:
    forms = word_forms(word)
    assert forms[0] == word
    assert includes <= set(forms)
    assert len(forms) == len(set(forms))


@pytest.mark.parametrize(("word", "excluded"), [("glass", "glas"), ("tennis", "tenni"), ("cactus", "cactu")])
def test_words_ending_in_ss_us_is_are_not_plurals(word: str, excluded: str) -> None:
    assert excluded not in word_forms(word)


@pytest.mark.parametrize("word", ["mg", "kit-0001", "1000", "chef's", "café"])
def test_short_words_digits_and_punctuation_stand_as_typed(word: str) -> None:
    assert word_forms(word) == [word]
