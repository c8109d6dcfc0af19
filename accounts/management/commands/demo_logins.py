"""`manage.py demo_logins` (`make logins`): a working login for the demo shopper and the staff user, for
whoever missed what the first `seed` printed. Their passwords are hashed, so they cannot be shown again:
each gets a new one (generated and printed, or the one its setting gives, named but never printed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.services import demo_accounts, reset_demo_logins


class Command(BaseCommand):
    help = (
        "Give the demo shopper and the staff user (DEMO_USER_EMAIL, STAFF_USER_EMAIL) a new password and "
        "print their logins; creates them if missing. Ends their current sessions and API tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        roles = sorted({account.role for account in demo_accounts()})
        parser.add_argument("--only", choices=roles, help="only this account (default: both)")

    def handle(self, *args: Any, only: str | None, **options: Any) -> None:
        roles = [only] if only else [account.role for account in demo_accounts()]
        for line in reset_demo_logins(roles=roles):
            self.stdout.write(line)
        self.stdout.write("Log in at /accounts/login/ (staff: /admin/ too). Run this again for new passwords.")
