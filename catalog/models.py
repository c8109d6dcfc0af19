"""Products live in Elasticsearch (catalog.documents), not in the database. This unmanaged model has
no table; it exists so the Django admin can list products in its index and sidebar (catalog/admin.py)
and so the admin's history (LogEntry, "Recent actions") has a real content type for product edits,
whose links then lead to the staff product pages."""

from django.db import models

# A product's id is its lower-cased SKU: the one length limit of both (staff form, service, this handle).
SKU_MAX_LENGTH = 64
# The other limits of a product's text, for the staff form and the service alike. A name is a heading,
# not a paragraph; a description a few paragraphs (and a huge paste is refused, not stored: issue 17).
NAME_MAX_LENGTH = 120
CATEGORY_MAX_LENGTH = 60
DESCRIPTION_MAX_LENGTH = 5000


class Product(models.Model):
    id = models.CharField(primary_key=True, max_length=SKU_MAX_LENGTH)

    class Meta:
        managed = False
        verbose_name = "product"
        verbose_name_plural = "products"

    def __str__(self) -> str:
        return self.id
