from django.apps import AppConfig


class ShopcartConfig(AppConfig):
    """Cross-cutting infrastructure: the Elasticsearch connection, the NATS publisher, health checks."""

    name = "shopcart"

    def ready(self) -> None:
        from shopcart import checks, es

        checks.register_settings_check()

        # Only records the settings; each process opens its own connection on first use (fork-safe).
        es.configure()
