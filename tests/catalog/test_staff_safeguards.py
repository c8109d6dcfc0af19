"""What the staff product pages guard against (issue 17): a huge description is refused with the form
and a field error, the typing kept, not with a bare 413 (item 8), and the limit is said and counted on
the field; a price of 0 and "1e3" are refused (item 9); "Deactivate" asks first, without JavaScript, and
returns to the list it came from, search and page kept (item 10); long names are limited (item 1)."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from django.test import Client

from catalog import selectors, services
from catalog.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from tests.support import catalog as catalog_support
from tests.support import unique

pytestmark = pytest.mark.django_db

ADD = "/admin/catalog/products/add/"


def fields(**overrides: Any) -> dict[str, Any]:
    return {
        "sku": unique("SG-"),
        "name": "Guarded Kettle",
        "description": "A kettle.",
        "category": "Kitchen",
        "price": "20.00",
        "currency": "USD",
        "stock": "5",
        "active": "on",
        **overrides,
    }


def field_errors(html: str, name: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', html, re.S)
    return [unescape(error) for error in re.findall(r"<li>(.*?)</li>", match.group(1))] if match else []


def test_the_description_says_its_limit_and_carries_it_for_the_counter(catalog: str, admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()
    textarea = re.search(r"<textarea[^>]*name=\"description\"[^>]*>", page)
    assert textarea
    assert f'data-max-length="{DESCRIPTION_MAX_LENGTH}"' in textarea.group(0)
    assert "maxlength" not in textarea.group(0)  # the browser would cut a paste short without a word
    assert f"At most {DESCRIPTION_MAX_LENGTH:,} characters." in page
    assert re.search(r'<script src="/static/shopcart/text_limit\.js" defer></script>', page)


def test_a_huge_description_comes_back_in_the_form_with_a_field_error(catalog: str, admin_client: Client) -> None:
    huge = "Paste " * 95_000  # ~570 KB, past the site's usual body limit (256 KiB)
    typed = fields(name="My Careful Kettle", description=huge)
    response = admin_client.post(ADD, typed)
    assert response.status_code == 200
    page = response.content.decode()
    length = len(huge.strip())
    assert field_errors(page, "description") == [f"Use at most 5,000 characters; this has {length:,}."]
    assert 'value="My Careful Kettle"' in page  # nothing typed is lost
    assert f"{huge}</textarea>" in page
    with pytest.raises(selectors.ProductNotFound):
        selectors.get_product(product_id=typed["sku"].lower(), include_inactive=True)


def test_a_description_at_the_limit_is_saved_with_line_breaks_counted_once(catalog: str, admin_client: Client) -> None:
    lines = ["x" * 99] * 50  # 50 lines of 99 characters and 49 line breaks: 4,999 characters
    typed = fields(description="\r\n".join(lines))  # as a browser sends a textarea
    assert admin_client.post(ADD, typed).status_code == 302
    saved = selectors.get_product(product_id=typed["sku"].lower(), use_cache=False)
    assert saved.description == "\n".join(lines)


def test_a_body_past_even_the_long_form_limit_is_the_shops_413_page(
    catalog: str, admin_client: Client, settings: Any
) -> None:
    settings.LONG_FORM_BODY_LIMIT = 300_000
    response = admin_client.post(ADD, fields(description="x" * 400_000))
    assert response.status_code == 413
    page = unescape(response.content.decode())
    assert "Nothing was saved. Go back: your browser still has what you typed." in page
    assert 'role="search"' in page  # the shop's page, not a bare one
    # Every other page keeps the usual limit.
    assert Client().post("/accounts/login/", {"password": "x" * 300_000}).status_code == 413


@pytest.mark.parametrize(
    "price", ["0", "0.00", "0.001", "1e3", "1E3", "12.5.0", "-1", "1,000", " ", "1000000.01", "NaN", "Infinity"]
)
def test_risky_prices_are_refused(catalog: str, admin_client: Client, price: str) -> None:
    typed = fields(price=price)
    response = admin_client.post(ADD, typed)
    assert response.status_code == 200, price
    assert field_errors(response.content.decode(), "price") == [services.PRICE_MESSAGE]
    with pytest.raises(selectors.ProductNotFound):
        selectors.get_product(product_id=typed["sku"].lower(), include_inactive=True)


@pytest.mark.parametrize(("price", "saved"), [("0.01", "0.01"), (" 12.5 ", "12.50"), ("1000000", "1000000.00")])
def test_ordinary_prices_are_saved(catalog: str, admin_client: Client, price: str, saved: str) -> None:
    typed = fields(price=price)
    assert admin_client.post(ADD, typed).status_code == 302
    assert selectors.get_product(product_id=typed["sku"].lower(), use_cache=False).price == Decimal(saved)


def test_the_service_refuses_a_free_product_too(catalog: str) -> None:
    with pytest.raises(services.InvalidProduct) as refused:
        services.create_product(data=catalog_support.product_input(sku_prefix="SG", price=Decimal("0")))
    assert refused.value.fields == {"price": [services.PRICE_MESSAGE]}


def test_names_have_a_sensible_limit(catalog: str, admin_client: Client) -> None:
    response = admin_client.post(ADD, fields(name="N" * (NAME_MAX_LENGTH + 1)))
    assert response.status_code == 200
    assert field_errors(response.content.decode(), "name")
    with pytest.raises(services.InvalidProduct) as refused:
        services.create_product(data=catalog_support.product_input(sku_prefix="SG", name="N" * (NAME_MAX_LENGTH + 1)))
    assert refused.value.fields == {"name": [f"Use at most {NAME_MAX_LENGTH} characters; this has 121."]}


def test_deactivate_asks_first_and_returns_to_the_filtered_list(catalog: str, admin_client: Client) -> None:
    product = services.create_product(
        data=catalog_support.product_input(sku_prefix="SG", name="Filtered Lantern", category="Outdoor")
    )
    listing = "/admin/catalog/products/?q=lantern&page=1"
    page = admin_client.get(listing).content.decode()
    ask = f"/admin/catalog/products/{product.id}/deactivate/?next=/admin/catalog/products/%3Fq%3Dlantern%26page%3D1"
    assert f'<a href="{ask}" class="button">Deactivate' in page
    assert re.search(r'<input type="submit" value="Deactivate"', page) is None  # no one-click deactivation

    question = admin_client.get(ask)
    assert question.status_code == 200
    text = unescape(question.content.decode())
    assert "Deactivate “Filtered Lantern”" in text
    assert '<input type="hidden" name="next" value="/admin/catalog/products/?q=lantern&page=1">' in text
    assert f'<a href="{listing}" class="button cancel-link">No, go back</a>' in text
    assert selectors.get_product(product_id=product.id, use_cache=False).active  # asking changed nothing

    done = admin_client.post(f"/admin/catalog/products/{product.id}/active/", {"active": "0", "next": listing})
    assert (done.status_code, done["Location"]) == (302, listing)
    assert not selectors.get_product(product_id=product.id, include_inactive=True, use_cache=False).active
    activate = admin_client.get(listing).content.decode()
    assert f'<input type="hidden" name="next" value="{listing.replace("&", "&amp;")}">' in activate

    offsite = admin_client.post(
        f"/admin/catalog/products/{product.id}/active/", {"active": "1", "next": "https://evil.example/"}
    )
    assert offsite["Location"] == "/admin/catalog/products/"
    assert (
        admin_client.get(f"/admin/catalog/products/{product.id}/deactivate/?next=//evil.example/").context["back"]
        == "/admin/catalog/products/"
    )
