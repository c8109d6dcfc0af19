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
