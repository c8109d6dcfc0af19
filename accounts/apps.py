from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, sign-up/log-in pages, API tokens and login throttling."""

    name = "accounts"
