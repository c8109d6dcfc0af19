"""The cart summary's cache entry (cart.selectors): the catalog version it was priced at, then the pickled
summary; an entry of another version, or not of this shape, is never served."""

from __future__ import annotations

import pickle

from cart.domain import empty_summary
from cart.selectors import _from_entry

SUMMARY = empty_summary(cart_id="user-1", currency="USD")


def entry(version: bytes, value: object = SUMMARY) -> bytes:
    return version + b"\n" + pickle.dumps(value)


def test_only_an_entry_of_the_current_version_is_served() -> None:
    assert _from_entry(entry(b"7"), version=7) == SUMMARY
    assert _from_entry(entry(b"6"), version=7) is None
    assert _from_entry(entry(b"17"), version=7) is None


def test_anything_else_is_a_miss() -> None:
    assert _from_entry(None, version=7) is None
    assert _from_entry(b"7", version=7) is None  # no newline: not an entry of this format
    assert _from_entry(entry(b"7", ("a", "tuple")), version=7) is None
