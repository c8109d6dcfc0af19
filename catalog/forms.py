"""Validation of the catalog pages' query strings."""

from typing import Any

from django import forms

from catalog.selectors import SORT_LABELS


class ProductFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True)
    category = forms.CharField(required=False, max_length=60)
    sort = forms.ChoiceField(required=False, choices=[("", "Default"), *SORT_LABELS.items()])
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)


class ProductForm(forms.Form):
    """The staff edit form; catalog.services validates again (and is the authority).

    The category is picked from the catalog's categories (`categories`), or typed into `new_category`,
    which wins when filled. A posted category that is not in the list is kept as it is (a client
    without the list, or a category whose last product changed meanwhile)."""

    sku = forms.CharField(max_length=64, help_text="Letters, digits, dots, dashes, underscores. Cannot change later.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    category = forms.CharField(max_length=60, required=False, widget=forms.Select)
    new_category = forms.CharField(
        max_length=60, required=False, label="Or a new category", help_text="Fill in only to add a category."
    )
    price = forms.DecimalField(min_value=0, max_value=1_000_000, decimal_places=2, max_digits=9)
    currency = forms.ChoiceField(choices=[("USD", "USD"), ("EUR", "EUR"), ("GBP", "GBP")])
    stock = forms.IntegerField(min_value=0, max_value=1_000_000)
    image_url = forms.CharField(
        max_length=500,
        required=False,
        label="Image URL",
        help_text="An http:// or https:// address. Empty: the shop draws one from the name and category.",
    )
    active = forms.BooleanField(required=False, initial=True)
    # The version the editor loaded; a save over someone else's newer change is refused.
    seq_no = forms.IntegerField(required=False, widget=forms.HiddenInput)
    primary_term = forms.IntegerField(required=False, widget=forms.HiddenInput)

    field_order = ["sku", "name", "description", "category", "new_category"]

    def __init__(self, *args: Any, categories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = str(self["category"].value() or "")
        names = sorted({*categories, *([current] if current else [])}, key=str.lower)
        self.fields["category"].widget.choices = [("", "— choose —"), *((name, name) for name in names)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        new = (cleaned.get("new_category") or "").strip()
        if new:
            cleaned["category"] = new
        elif not (cleaned.get("category") or "").strip() and "category" not in self.errors:
            self.add_error("category", "Choose a category, or type a new one below.")
        return cleaned
