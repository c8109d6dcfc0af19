"""Validation of the cart pages' forms (and nothing else: the services decide what is allowed)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from cart.domain import MAX_PRODUCT_ID_LENGTH
from cart.errors import quantity_message
from shopcart.request_bodies import whole_number


class QuantityField(forms.CharField):
    """A quantity as the API reads one (one rule, one message: issue 17): a whole number in digits, so an
    empty box, "1.5" and "2.0" alike are refused with the same words. The range is the services' to decide
    and say (1 to the per-line maximum, also after merging; 0 in the cart removes the line)."""

    def clean(self, value: Any) -> int:
        number = whole_number(str(value or ""))
        if number is None:
            raise forms.ValidationError(quantity_message(settings.CART_MAX_QUANTITY_PER_LINE), code="invalid")
        return number


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
    quantity = QuantityField()


class UpdateQuantityForm(ProductForm):
    quantity = QuantityField()


def first_error(form: forms.Form) -> str:
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return "The request was not valid."
