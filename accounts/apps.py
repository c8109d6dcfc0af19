from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, sign-up/log-in pages, API tokens and login throttling."""

    name = "accounts"

    def ready(self) -> None:
        # In every process (web, manage.py, shell), so no change to a user leaves a stale auth cache entry.
        from accounts import auth_cache

        auth_cache.connect_signals()
