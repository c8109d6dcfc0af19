"""JSON API routes of the cart app (mounted by shopcart/api.py). Bearer token only: the cart is always
the token's user's cart, so no URL or body can name someone else's."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.params import functions as params

from cart import selectors, services
from cart.domain import Cart, as_recorded
from cart.owners import user_cart_id
from cart.schemas import AddItemIn, CartOut, SetQuantityIn
from shopcart.http_errors import COMMON_ERROR_RESPONSES, ErrorOut, unavailable_dependency

logger = logging.getLogger(__name__)


# Every route needs the Bearer token: shopcart/api.py mounts this router with accounts' one Bearer auth.
router = Router(tags=["cart"])

WRITE_RESPONSES: dict[int, Any] = {
    **COMMON_ERROR_RESPONSES,
    200: CartOut,
    401: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}

IdempotencyKey = Annotated[
    str | None,
    params.Header(
        None,
        alias="Idempotency-Key",
        description="Optional; a new random value (a UUID) per intended change, sent again unchanged when "
        "retrying it. A request whose key this cart has already applied is not applied again: it is answered "
        "200 with the cart (which holds the change once) and `Idempotent-Replayed: true`. The same key with a "
        "different request (operation, product or quantity) is refused with 422 `idempotency_key_reused`. "
        "1-255 printable ASCII characters; a cart remembers its last 50 keys for 24 hours.",
    ),
]
IDEMPOTENCY_NOTE = (
    " With an `Idempotency-Key`, a retry never applies the change twice. 503 `outcome_unknown`: the answer "
    "of the write was lost and could not be confirmed; retry with the same key."
)


def _cart_id(request: HttpRequest) -> str:
    return user_cart_id(request.auth.pk)  # type: ignore[attr-defined]


def _out(cart: Cart, response: HttpResponse) -> CartOut:
    if cart.replayed:
        response["Idempotent-Replayed"] = "true"
        # Nothing was written now: the summary of the cart as it is (it holds the first request's change).
        return CartOut.of(selectors.summarize(cart=cart))
    # The summary of exactly the version just written: no second read, and read-your-writes.
    try:
        return CartOut.of(selectors.summarize(cart=cart, lookup=False))
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        # The write is acknowledged by Elasticsearch: a 503 ("nothing was changed") would be false and
        # a client retrying it would add twice. Answer with the cart as written, at its recorded prices.
        logger.warning("cart %s written, but summarising it failed (%r); answering with recorded prices", cart.id, exc)
        return CartOut.of(as_recorded(cart))


@router.get(
    "/user/cart",
    response={**COMMON_ERROR_RESPONSES, 200: CartOut, 401: ErrorOut},
    summary="Cart summary",
    description="Every line with its current unit price, line total and whether the price changed since "
    "it was added; item and line counts, subtotal and currency. Money is a decimal string.",
)
def get_cart(request: HttpRequest) -> CartOut:
    return CartOut.of(selectors.get_summary(cart_id=_cart_id(request)))


@router.post(
    "/user/cart",
    response=WRITE_RESPONSES,
    summary="Add a product (merges into an existing line)",
    description="400: invalid quantity, over the per-line maximum (after merging), out of stock, unknown or "
    "inactive product (`error.fields` names the field). 409 `cart_busy`: concurrent changes kept "
    "conflicting; nothing was changed, retry." + IDEMPOTENCY_NOTE,
)
def add_item(
    request: HttpRequest, payload: AddItemIn, response: HttpResponse, idempotency_key: IdempotencyKey = None
) -> CartOut:
    cart = services.add_item(
        cart_id=_cart_id(request),
        product_id=payload.productId,
        quantity=payload.quantity,
        idempotency_key=idempotency_key,
    )
    return _out(cart, response)


@router.patch(
    "/user/cart/items/{product_id}",
    response=WRITE_RESPONSES,
    summary="Set a line's quantity",
    description="404 `line_not_found` if the product is not in the cart; 400 as for adding; 409 `cart_busy`."
    + IDEMPOTENCY_NOTE,
)
def set_quantity(
    request: HttpRequest,
    product_id: str,
    payload: SetQuantityIn,
    response: HttpResponse,
    idempotency_key: IdempotencyKey = None,
) -> CartOut:
    cart = services.set_quantity(
        cart_id=_cart_id(request), product_id=product_id, quantity=payload.quantity, idempotency_key=idempotency_key
    )
    return _out(cart, response)


@router.delete(
    "/user/cart/items/{product_id}",
    response=WRITE_RESPONSES,
    summary="Remove a line",
    description="404 `line_not_found` if the product is not in the cart; 409 `cart_busy`." + IDEMPOTENCY_NOTE,
)
def remove_item(
    request: HttpRequest, product_id: str, response: HttpResponse, idempotency_key: IdempotencyKey = None
) -> CartOut:
    cart = services.remove_item(cart_id=_cart_id(request), product_id=product_id, idempotency_key=idempotency_key)
    return _out(cart, response)


@router.delete(
    "/user/cart",
    response={**COMMON_ERROR_RESPONSES, 200: CartOut, 401: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Empty the cart",
    description="409 `cart_busy`." + IDEMPOTENCY_NOTE,
)
def clear_cart(request: HttpRequest, response: HttpResponse, idempotency_key: IdempotencyKey = None) -> CartOut:
    return _out(services.clear_cart(cart_id=_cart_id(request), idempotency_key=idempotency_key), response)
