"""API shapes of the cart (validation and serialisation only)."""

from __future__ import annotations

from typing import Annotated, Any

from django.conf import settings
from ninja import Field, Schema
from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from cart.domain import MAX_PRODUCT_ID_LENGTH, CartSummary
from cart.errors import quantity_message
from shopcart.money import format_amount
from shopcart.request_bodies import form_whole_number


def _whole_number(value: Any, info: ValidationInfo) -> int:
    """A quantity is a whole number: 3 in a JSON body, "3" in a form body. "2", 2.0, 1.5, true and "x" are
    refused with the pages' own message (issue 17: one rule, one message); the range (1 to the per-line
    maximum, 0 removing a line) is the services' to decide and say, as for the pages."""
    value = form_whole_number(value, info)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("invalid_quantity", quantity_message(settings.CART_MAX_QUANTITY_PER_LINE))
    return value


Quantity = Annotated[int, BeforeValidator(_whole_number)]


class AddItemIn(Schema):
    productId: str = Field(
        ..., min_length=1, max_length=MAX_PRODUCT_ID_LENGTH, description="The product's id (its lower-cased SKU)"
    )
    quantity: Quantity = Field(
        ...,
        description="Items to add, a whole number from 1; merged into an existing line of the product, which "
        "may hold at most the per-line maximum (99 unless configured)",
        json_schema_extra={"minimum": 1},
    )


class SetQuantityIn(Schema):
    quantity: Quantity = Field(
        ...,
        description="The line's new quantity: a whole number up to the per-line maximum (99 unless configured); "
        "0 removes the line",
        json_schema_extra={"minimum": 0},
    )


class CartLineOut(Schema):
    productId: str
    sku: str
    name: str
    unitPrice: str = Field(description='Current unit price, a decimal string like "12.50"')
    addedUnitPrice: str = Field(description="The unit price when the product was added")
    quantity: int
    lineTotal: str = Field(description='unitPrice * quantity ("0.00" for an unavailable line)')
    priceChanged: bool = Field(description="The current price differs from the price when it was added")
    available: bool = Field(description="False when the product was deleted or is no longer sold")


class CartOut(Schema):
    lines: list[CartLineOut]
    itemCount: int = Field(description="Sum of the quantities of available lines")
    lineCount: int = Field(description="Number of available lines")
    subtotal: str = Field(description='Sum of the line totals, a decimal string like "37.50"')
    currency: str

    @classmethod
    def of(cls, summary: CartSummary) -> CartOut:
        """The one way a cart goes out: money as decimal strings like "12.50". Built with
        `model_construct`, since every value is typed already: validating it again through django-ninja's
        per-object wrapper cost ~15 us a line, 3 ms for a 200-line cart (bench/README.md)."""
        lines = [
            CartLineOut.model_construct(
                productId=line.product_id,
                sku=line.sku,
                name=line.name,
                unitPrice=format_amount(line.unit_price_cents),
                addedUnitPrice=format_amount(line.added_unit_price_cents),
                quantity=line.quantity,
                lineTotal=format_amount(line.line_total_cents),
                priceChanged=line.price_changed,
                available=line.available,
            )
            for line in summary.lines
        ]
        return cls.model_construct(
            lines=lines,
            itemCount=summary.item_count,
            lineCount=summary.line_count,
            subtotal=format_amount(summary.subtotal_cents),
            currency=summary.currency,
        )
