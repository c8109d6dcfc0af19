import os
import sys

from django.apps import AppConfig


class CartConfig(AppConfig):
    """Carts in Elasticsearch with optimistic concurrency, and cart events on NATS."""

    name = "cart"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_delete

        from cart.signals import delete_cart_of_deleted_user, merge_cart_on_login

        # Session log-ins only (pages, admin): an API log-in issues a token and has no anonymous cart.
        user_logged_in.connect(merge_cart_on_login, dispatch_uid="cart.merge_cart_on_login")
        post_delete.connect(
            delete_cart_of_deleted_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="cart.delete_cart_of_user"
        )
        # `make dev`: the development server's serving process is a relay candidate too, as each gunicorn
        # worker is (shopcart/gunicorn_conf.py); the autoreloader's parent process is not.
        if "runserver" in sys.argv and os.environ.get("RUN_MAIN") == "true":
            from cart import relay

            relay.ensure_relay_thread()
