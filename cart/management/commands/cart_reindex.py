"""`manage.py cart_reindex`: move the carts to a physical index with the current mapping and swap the
alias to it (docs/operations.md, "Moving the carts to a new mapping").

manage.py cart_reindex                   # copy, swap; the old index stays, write-blocked
manage.py cart_reindex --drop-old        # later: delete the old index (after CART_VERSION_CACHE_TTL)
manage.py cart_reindex --drop-old --force
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cart.documents import drop_old_cart_index, migrate_cart_index


class Command(BaseCommand):
    help = "Move the carts to a new physical index with the current mapping (alias swap), or drop the old one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--drop-old", action="store_true", help="delete the index the carts moved from")
        parser.add_argument("--force", action="store_true", help="with --drop-old: do not wait for cached versions")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["drop_old"]:
                dropped = drop_old_cart_index(force=options["force"])
                self.stdout.write(f"deleted {', '.join(dropped)}" if dropped else "no old cart index left")
                return
            self.stdout.write(migrate_cart_index(log=self.stderr.write))
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
