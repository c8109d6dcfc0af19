"""The demo catalog: the realistic fixture shipped in the repo, and synthetic products in bulk."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from catalog.services import ProductInput, bulk_load_products, product_id_for_sku, validate_product_input

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "products.json"

_SYNTHETIC_CATEGORIES = ["Kitchen", "Outdoor", "Electronics", "Home", "Books", "Toys", "Sports", "Garden"]
_SYNTHETIC_WORDS = [
    "Alpine", "Cobalt", "Ember", "Granite", "Harbor", "Juniper", "Maple", "Nimbus", "Orchid", "Quartz",
    "Saffron", "Timber", "Vesper", "Willow", "Zephyr", "Aurora", "Basalt", "Cedar", "Delta", "Fjord",
]  # fmt: skip
_SYNTHETIC_ITEMS = [
    "Mug", "Lamp", "Backpack", "Notebook", "Speaker", "Blanket", "Skillet", "Puzzle", "Bottle", "Planter",
    "Kettle", "Charger", "Towel", "Kite", "Racket", "Trowel", "Candle", "Clock", "Headlamp", "Stool",
]  # fmt: skip


def fixture_products() -> list[dict[str, Any]]:
    """The shipped catalog as document dicts, each validated like an admin edit."""
    products = []
    for raw in json.loads(FIXTURE.read_text()):
        fields = validate_product_input(ProductInput(**{**raw, "price": raw["price"]}))
        products.append({"id": product_id_for_sku(fields["sku"]), **fields})
    return products


def synthetic_products(count: int, *, seed: int = 42) -> Iterator[dict[str, Any]]:
    """`count` generated products with ids syn-0000001…, so generating the same count twice
    overwrites the same documents instead of adding more."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    for n in range(1, count + 1):
        word, item = rng.choice(_SYNTHETIC_WORDS), rng.choice(_SYNTHETIC_ITEMS)
        category = rng.choice(_SYNTHETIC_CATEGORIES)
        sku = f"SYN-{n:07d}"
        yield {
            "id": product_id_for_sku(sku),
            "sku": sku,
            "name": f"{word} {item} {n}",
            "description": f"A generated {item.lower()} in the {category.lower()} range, model {word} {n}.",
            "category": category,
            "price_cents": rng.randrange(199, 49_999),
            "currency": "USD",
            "stock": rng.randrange(0, 200),
            "image_url": "",  # a generated picture of its own (catalog.images)
            "active": True,
        }


def load_fixture(*, on_progress: Callable[[int], None] | None = None) -> int:
    return bulk_load_products(products=fixture_products(), on_progress=on_progress)


def load_synthetic(*, count: int, on_progress: Callable[[int], None] | None = None) -> int:
    return bulk_load_products(products=synthetic_products(count), on_progress=on_progress)
