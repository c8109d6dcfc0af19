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
