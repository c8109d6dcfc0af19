"""Validation of the catalog pages' query strings and of the staff product form."""

import re
from decimal import Decimal
from typing import Any

from django import forms

from catalog.models import CATEGORY_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, SKU_MAX_LENGTH
from catalog.selectors import SORT_LABELS, search_text
from catalog.services import PRICE_MESSAGE, normalize_text, price_cents_of, too_long
from shopcart.money import CURRENCIES

# A price as people write one: digits, and at most two decimals. Not "1e3" (which Decimal reads as 1000)
# nor "12.5.0"; the range is the service's (at least 0.01).
_PRICE_TEXT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")

MAX_QUERY_LENGTH = 200
MAX_PAGE = 10_000


class QueryField(forms.CharField):
    """The search box: its text as searched for (catalog.selectors.search_text), before any check, so the
    page shows and finds what the API would."""

    def to_python(self, value: Any) -> str:
        return search_text(super().to_python(value))


class ProductFilterForm(forms.Form):
    q = QueryField(required=False, max_length=MAX_QUERY_LENGTH, strip=True)
    category = forms.CharField(required=False, max_length=CATEGORY_MAX_LENGTH)
    sort = forms.ChoiceField(required=False, choices=[("", "Default"), *SORT_LABELS.items()])
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)

    def usable_data(self) -> tuple[dict[str, Any], list[str]]:
        """Each parameter on its own: a bad one falls back to its default (or is clamped) and the others
        are kept, so one odd parameter never discards a search. Also returns what the shopper should be
        told (a changed search or an ignored sort; a bad page number needs no word, it just starts at 1)."""
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        notes: list[str] = []
        errors = self.errors.as_data()
        if "q" in errors:
            shortened = (self.data.get("q") or "").strip()[:MAX_QUERY_LENGTH]
            try:
                data["q"] = self.fields["q"].clean(shortened)
                notes.append(f"Your search was too long, so only its first {MAX_QUERY_LENGTH} characters were used.")
            except forms.ValidationError:  # not text we can search for (a NUL character, say)
                notes.append("Your search could not be read, so all products are shown.")
        if "sort" in errors:
            notes.append("That sort order is unknown, so the usual order is used.")
        if "category" in errors:
            # No category has such a name (too long, a NUL): the list page answers it as an unknown one, 404.
            data["category"] = (self.data.get("category") or "").strip()
        if "page" in errors:
            # Past the largest page: the view sends the shopper to the last page there is.
            data["page"] = MAX_PAGE if any(e.code == "max_value" for e in errors["page"]) else 1
        return data, notes


class ProductForm(forms.Form):
    """The staff edit form; catalog.services validates again (and is the authority).

    The category is picked from the catalog's categories (`categories`), or typed into `new_category`,
    which wins when filled. A posted category that is not in the list is kept as it is (a client
    without the list, or a category whose last product changed meanwhile)."""

    sku = forms.CharField(
        max_length=SKU_MAX_LENGTH, help_text="Letters, digits, dots, dashes, underscores. Cannot change later."
    )
    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    # No maxlength attribute: the browser would cut a long paste short without a word. The limit is said,
    # counted as the staff member types (shopcart/static/shopcart/text_limit.js, on data-max-length), and
    # checked here, where a too long text comes back in the form with the error.
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "data-max-length": DESCRIPTION_MAX_LENGTH}),
        required=False,
        help_text=f"At most {DESCRIPTION_MAX_LENGTH:,} characters.",
    )
    category = forms.CharField(max_length=CATEGORY_MAX_LENGTH, required=False, widget=forms.Select)
    new_category = forms.CharField(
        max_length=CATEGORY_MAX_LENGTH,
        required=False,
        label="Or a new category",
        help_text="Fill in only to add a category.",
    )
    price = forms.CharField(
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        help_text="Like 12.50: at least 0.01.",
        error_messages={"required": PRICE_MESSAGE},
    )
    currency = forms.ChoiceField(choices=[(code, code) for code in CURRENCIES])
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

    def clean_description(self) -> str:
        description = normalize_text(self.cleaned_data.get("description") or "")
        if problem := too_long(description, limit=DESCRIPTION_MAX_LENGTH):
            raise forms.ValidationError(problem, code="max_length")
        return description

    def clean_price(self) -> Decimal:
        text = (self.cleaned_data.get("price") or "").strip()
        if not _PRICE_TEXT.fullmatch(text) or price_cents_of(text) is None:
            raise forms.ValidationError(PRICE_MESSAGE, code="invalid")
        return Decimal(text)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        new = (cleaned.get("new_category") or "").strip()
        if new:
            cleaned["category"] = new
        elif not (cleaned.get("category") or "").strip() and "category" not in self.errors:
            self.add_error("category", "Choose a category, or type a new one below.")
        return cleaned
