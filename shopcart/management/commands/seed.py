"""`manage.py seed`: indices, the demo catalog and the demo users, idempotently."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.services import ensure_demo_users
from cart.services import ensure_cart_index
from catalog import seeding
from catalog.selectors import count_products
from catalog.services import drop_all_products, ensure_product_index, upgrade_product_index


class Command(BaseCommand):
    help = (
        "Create the Elasticsearch indices and aliases, load the demo catalog shipped in "
        "catalog/fixtures/products.json, and create the demo and staff users. Running it twice changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--products", type=int, metavar="N", help="load N synthetic products instead of the fixture"
        )
        parser.add_argument("--reset", action="store_true", help="drop every product first (recreates the index)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing if the catalog has products already")

    def handle(self, *args: Any, products: int | None, reset: bool, if_empty: bool, **options: Any) -> None:
        # Before anything else, --if-empty included: an index made by an older version of the app gets
        # the current mapping (what `make run` relies on after a pull).
        if not reset and (copied := upgrade_product_index()) is not None:
            self.stdout.write(f"Reindexed {copied} products into the current mapping.")
        if if_empty and count_products() > 0:
            self.stdout.write(
                "Catalog already has products; nothing to seed. The demo and staff logins: `make logins` "
                "(new passwords)."
            )
            return
        if reset:
            drop_all_products()
            self.stdout.write("Recreated the product index.")
        elif ensure_product_index():
            self.stdout.write("Created the product index and alias.")
        self._ensure_other_indices()

        started = time.monotonic()
        if products is not None:
            if products < 1:
                self.stderr.write("--products takes a positive number.")
                sys.exit(2)
            written = seeding.load_synthetic(count=products, on_progress=self._progress(products))
        else:
            written = seeding.load_fixture()
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {written} products in {time.monotonic() - started:.1f}s; {count_products()} in the catalog."
            )
        )
        self._ensure_users()

    def _ensure_other_indices(self) -> None:
        """Indices of the other apps (the cart), created through their services."""
        ensure_cart_index()

    def _ensure_users(self) -> None:
        for line in ensure_demo_users():
            self.stdout.write(line)

    def _progress(self, total: int):  # type: ignore[no-untyped-def]
        stream = self.stderr

        def report(done: int) -> None:
            width = 30
            filled = width * done // total
            stream.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
            if done >= total:
                stream.write("")

        return report
