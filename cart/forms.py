"""Validation of the cart pages' forms (and nothing else: the services decide what is allowed)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from cart.domain import MAX_PRODUCT_ID_LENGTH
from cart.errors import quantity_message


def _quantity_field(**kwargs: Any) -> forms.IntegerField:
    maximum = settings.CART_MAX_QUANTITY_PER_LINE
    message = quantity_message(maximum)
    # max_value is left to the services, which say "at most N of this product" (also after merging).
    return forms.IntegerField(
        min_value=1,
        error_messages={"invalid": message, "min_value": message, "required": message},
        **kwargs,
    )


class IdempotentForm(forms.Form):
    # The form's one-time token (`cart_form_token` in the template): a re-sent form (double click, reload,
    # a retry after a lost answer) is recognised by the cart and not applied twice. The services check it.
    idempotency_key = forms.CharField(required=False)

    def key(self) -> str | None:
        return self.cleaned_data.get("idempotency_key") or None


class ProductForm(IdempotentForm):
    product_id = forms.CharField(max_length=MAX_PRODUCT_ID_LENGTH, error_messages={"required": "Choose a product."})


class AddToCartForm(ProductForm):
    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"] = _quantity_field(required=False)

    def clean_quantity(self) -> int:
        # A product card's form may leave the box empty: one item.
        quantity = self.cleaned_data.get("quantity")
        return 1 if quantity is None else quantity


class UpdateQuantityForm(ProductForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"] = _quantity_field()


def first_error(form: forms.Form) -> str:
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return "The request was not valid."
