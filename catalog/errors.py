"""Domain errors of the catalog; shopcart.http_errors maps each kind to a status code."""

from shopcart.errors import Conflict, Invalid, NotFound


class ProductNotFound(NotFound):
    code = "product_not_found"


class SkuAlreadyExists(Conflict):
    code = "sku_taken"


class ProductChanged(Conflict):
    """Someone else saved the product since it was read (optimistic concurrency)."""

    code = "product_changed"


class InvalidProduct(Invalid):
    code = "invalid_product"


class ProductNoLongerAvailable(ProductNotFound):
    """The product exists but staff deactivated it: not for sale, and said so (not "no such product")."""

    code = "product_no_longer_available"


class UnknownCategory(NotFound):
    """A category filter naming no category of the active catalog (in any letter case)."""

    code = "unknown_category"

    def __init__(self, *, name: str, categories: list[str]) -> None:
        listed = ", ".join(categories) or "none yet"
        super().__init__(f"There is no category “{name}”. The categories are: {listed}.")
        self.name = name
        self.categories = categories
