from django.apps import AppConfig


class CartConfig(AppConfig):
    """Carts in Elasticsearch with optimistic concurrency, and cart events on NATS."""

    name = "cart"
