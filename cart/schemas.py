"""API shapes of the cart (validation and serialisation only)."""

from __future__ import annotations

from typing import Annotated

from ninja import Field, Schema
from pydantic import BeforeValidator, StrictInt

from cart.domain import MAX_PRODUCT_ID_LENGTH, CartSummary
from shopcart.money import format_amount
from shopcart.request_bodies import form_whole_number

# Strict: "2", 1.5, true and "x" are refused with a 400 field error instead of being coerced (in a JSON
# body; a form's fields are all text, so there "2" is 2). The upper bound only keeps absurd numbers out
# of the services; the real per-line maximum is a setting.
QUANTITY_LIMIT = 1_000_000
Quantity = Annotated[StrictInt, BeforeValidator(form_whole_number)]


class AddItemIn(Schema):
    productId: str = Field(
        ..., min_length=1, max_length=MAX_PRODUCT_ID_LENGTH, description="The product's id (its lower-cased SKU)"
    )
    quantity: Quantity = Field(
        ..., ge=1, le=QUANTITY_LIMIT, description="Items to add; merged into an existing line of the product"
    )


class SetQuantityIn(Schema):
    quantity: Quantity = Field(..., ge=1, le=QUANTITY_LIMIT, description="The line's new quantity")


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
