"""`manage.py cart_cleanup`: delete the anonymous carts nobody can reach any more.

manage.py cart_cleanup               # carts of guests idle for CART_GUEST_CART_RETENTION_DAYS (30)
manage.py cart_cleanup --days 45     # another threshold
manage.py cart_cleanup --dry-run     # only count them

Run it daily from the scheduler of the deployment (cron, a Kubernetes CronJob); any replica's image
and environment will do, and two runs at once are harmless.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import ngettext

from cart import services


class Command(BaseCommand):
    help = "Delete anonymous carts unchanged for longer than a guest's session can last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="delete guest carts unchanged for this many days (default: CART_GUEST_CART_RETENTION_DAYS)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count them, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.CART_GUEST_CART_RETENTION_DAYS
        if days < 1:
            raise CommandError("--days must be at least 1.")
        count = services.delete_abandoned_guest_carts(idle_days=days, dry_run=options["dry_run"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        carts = ngettext("%(count)d guest cart", "%(count)d guest carts", count) % {"count": count}
        self.stdout.write(f"{verb} {carts} unchanged for more than {days} days.")
