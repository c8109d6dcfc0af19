"""The words of a search, as the product search uses them (docs/adr/0008). Pure: no Elasticsearch here.

- `query_words`: the query split where the shopper typed spaces, lower-cased, punctuation around a
  word dropped, at most MAX_QUERY_WORDS of them.
- `STOP_WORDS`: Lucene's English stop words (Elasticsearch's `_english_`, which the description field's
  analyzer drops too). A query's stop words are not required when it has other words ("and" is in a
  quarter of the descriptions: it used to match 60 products on its own).
- `word_forms`: a word with its singular and plural forms, so "trains" finds "train" and "battery"
  finds "batteries". Elasticsearch's stemmers live in its analysis-common module, which the local
  server does not have (docs/adr/0001), so the forms are made here, at query time, the way hosted shop
  search does it ("ignore plurals"): the index keeps the words as written, the query asks for each form.
  A form that is no real word matches nothing and costs a term lookup.
"""

from __future__ import annotations

import re

MAX_QUERY_WORDS = 10
# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, which is Elasticsearch's `_english_` list.
STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
        "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
        "will", "with",
    }
)  # fmt: skip
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
_VOWELS = frozenset("aeiou")


def query_words(query: str) -> list[str]:
    """The words of `query` in order: split at whitespace, lower-cased, without the punctuation around
    them ("(telescope)," is "telescope"; "chef's" and "kit-0001" stay whole). Words past the first
    MAX_QUERY_WORDS are left out: a shop query is a few words, and each word is a clause of the search."""
    words = (_EDGE_PUNCTUATION.sub("", part) for part in query.lower().split())
    return [word for word in words if word][:MAX_QUERY_WORDS]


def is_stop_word(word: str) -> bool:
    return word in STOP_WORDS


def word_forms(word: str) -> list[str]:
    """`word` with its likely singular and plural forms, `word` first. Only words of three or more
    letters have forms (digits, apostrophes and short words stand as typed)."""
    if len(word) < 3 or not word.isalpha() or not word.isascii():
        return [word]
    forms = [word, *_singulars(word), *_plurals(word)]
    return list(dict.fromkeys(form for form in forms if len(form) >= 2))


def _singulars(word: str) -> list[str]:
    if word.endswith("ies") and len(word) > 4 and word[-4] not in _VOWELS:
        return [word[:-3] + "y"]  # batteries -> battery (but "pies" keeps its "ie": pie)
    if word.endswith("ves") and len(word) > 4:
        return [word[:-3] + "f", word[:-3] + "fe", word[:-1]]  # shelves -> shelf, knives -> knife, gloves -> glove
    if word.endswith("es") and len(word) > 3:
        return [word[:-1], word[:-2]]  # shoes -> shoe, boxes -> box, glasses -> glass
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return [word[:-1]]  # trains -> train; not glass, cactus, tennis
    return []


def _plurals(word: str) -> list[str]:
    if word.endswith("y") and word[-2] not in _VOWELS:
        return [word[:-1] + "ies"]  # battery -> batteries (toy -> toys below)
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return [word + "es"]  # glass -> glasses, box -> boxes
    if word.endswith("fe"):
        return [word + "s", word[:-2] + "ves"]  # knife -> knives
    if word.endswith("f"):
        return [word + "s", word[:-1] + "ves"]  # shelf -> shelves, roof -> roofs
    return [word + "s"]
