"""Domain errors of the cart. Each subclasses a kind from shopcart.errors; shopcart.http_errors
decides its HTTP status (API) and views how a page shows it; the services raise these and never speak HTTP.

409 is reserved for "retry the same request" (CartBusy). A refusal the client can only fix by asking
for something else (a smaller quantity, another product) is Invalid, a 400 with a field error, so a
client that retries 409s automatically never loops on it. That is why OutOfStock is Invalid.
"""

from __future__ import annotations

from shopcart.errors import Conflict, Invalid, NotFound, Unavailable, Unprocessable


class QuantityInvalid(Invalid):
    """Not a whole number from 1 to the per-line maximum."""

    code = "invalid_quantity"

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"quantity": [message]})


class QuantityOverMaximum(Invalid):
    """The line would hold more than CART_MAX_QUANTITY_PER_LINE (also after merging quantities)."""

    code = "quantity_over_maximum"

    def __init__(self, message: str, *, maximum: int) -> None:
        super().__init__(message, fields={"quantity": [message]})
        self.maximum = maximum


class OutOfStock(Invalid):
    """The line would hold more than the product's stock."""

    code = "out_of_stock"

    def __init__(self, message: str, *, available: int) -> None:
        super().__init__(message, fields={"quantity": [message]})
        self.available = available


class ProductUnavailable(Invalid):
    """The product named in the request does not exist or is not for sale (inactive). A 400 on the
    request's productId field rather than a 404: the addressed resource is the cart, which exists."""

    code = "product_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"productId": [message]})


class CurrencyMismatch(Invalid):
    """A cart holds one currency; a product priced in another cannot join it."""

    code = "currency_mismatch"

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"productId": [message]})


class LineNotFound(NotFound):
    """The cart has no line for this product."""

    code = "line_not_found"
    default_message = "This product is not in your cart."

    def __init__(self, message: str = default_message) -> None:
        super().__init__(message)


def quantity_message(maximum: int) -> str:
    """What a quantity outside 1..maximum is told, by the pages' forms and the services alike."""
    return f"Enter a whole number from 1 to {maximum}."


class CartBusy(Conflict):
    """Optimistic-concurrency retries ran out: other requests kept changing this cart. Nothing was
    changed by this request; the client may retry it."""

    code = "cart_busy"


class IdempotencyKeyInvalid(Invalid):
    """An Idempotency-Key (or form token) that is empty, too long or not printable ASCII."""

    code = "invalid_idempotency_key"

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"Idempotency-Key": [message]})


class IdempotencyKeyReused(Unprocessable):
    """The key was already used on this cart for a different request (another operation, product or
    quantity). Refused as Stripe does, with the IETF Idempotency-Key draft's status, 422; never a 409,
    which here means "retry the same request"."""

    code = "idempotency_key_reused"


class CartOutcomeUnknown(Unavailable):
    """A cart write's answer was lost (connection dropped, node died) and Elasticsearch could not be read
    back in time to learn whether it was applied. Said as such, never as "nothing was changed"."""

    code = "outcome_unknown"
