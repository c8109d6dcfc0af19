from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Products in Elasticsearch: listing, search, detail, seeding and staff admin pages."""

    name = "catalog"
