"""The staff product pages inside the Django admin: the category list, descriptions with line breaks,
a concurrent edit that keeps what was typed, the admin's history (LogEntry), its sidebar and header."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.test import Client

from catalog import selectors, services
from catalog.seeding import fixture_products
from tests.support import catalog as catalog_support

pytestmark = pytest.mark.django_db


def new_product(**overrides: Any) -> selectors.Product:
    fields: dict[str, Any] = {
        "name": "Staff Kettle",
        "description": "A kettle.",
        "price": Decimal("20.00"),
        "stock": 5,
        **overrides,
    }
    return services.create_product(data=catalog_support.product_input(sku_prefix="STF", **fields))


def form_fields(product: selectors.Product, **overrides: Any) -> dict[str, Any]:
    fields = {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "new_category": "",
        "price": str(product.price),
        "currency": product.currency,
        "stock": product.stock,
        "image_url": product.image_url,
        "active": "on",
        "seq_no": product.seq_no,
        "primary_term": product.primary_term,
    }
    return {**fields, **overrides}


def hidden(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden {name}"
    return match.group(1)


def test_the_category_is_chosen_from_the_catalogs_or_added_explicitly(catalog: str, admin_client: Client) -> None:
    page = admin_client.get("/admin/catalog/products/add/").content.decode()
    select = re.search(r'<select name="category"[^>]*>(.*?)</select>', page, re.S)
    assert select, "the category is not a list"
    options = re.findall(r'<option value="([^"]*)"', select.group(1))
    assert options == ["", *sorted({p["category"] for p in fixture_products()}, key=str.lower)]
    assert 'name="new_category"' in page

    base = {"name": "Desk Lamp", "price": "30.00", "currency": "USD", "stock": 3, "active": "on"}
    picked = admin_client.post("/admin/catalog/products/add/", {**base, "sku": "STF-PICK", "category": "Home"})
    assert picked.status_code == 302
    assert selectors.get_product(product_id="stf-pick").category == "Home"

    added = admin_client.post(
        "/admin/catalog/products/add/", {**base, "sku": "STF-NEW", "category": "Home", "new_category": " Lighting "}
    )
    assert added.status_code == 302
    assert selectors.get_product(product_id="stf-new").category == "Lighting"
    assert "Lighting" in selectors.category_names()

    neither = admin_client.post("/admin/catalog/products/add/", {**base, "sku": "STF-NONE", "category": ""})
    assert neither.status_code == 200
    assert "Choose a category, or type a new one below." in neither.content.decode()


def test_descriptions_keep_their_line_breaks_escaped(catalog: str) -> None:
    product = new_product(description="First line\nSecond <b>line</b>\r\n\r\nLast")
    html = Client().get(f"/products/{product.id}").content.decode()
    assert "First line<br>Second &lt;b&gt;line&lt;/b&gt;<br><br>Last" in html


def test_a_concurrent_edit_is_refused_and_keeps_what_was_typed(catalog: str, admin_client: Client) -> None:
    product = new_product()
    url = f"/admin/catalog/products/{product.id}/change/"
    loaded = admin_client.get(url).content.decode()
    assert hidden(loaded, "seq_no") == str(product.seq_no)

    # Someone else saves first.
    services.update_product(
        product_id=product.id,
        data=catalog_support.input_of(product, name="Their Kettle", stock=9),
        if_seq_no=product.seq_no,
        if_primary_term=product.primary_term,
    )
    typed = form_fields(product, name="My Kettle", description="My careful\ndescription", price="21.50")
    refused = admin_client.post(url, typed)
    assert refused.status_code == 409
    page = refused.content.decode()
    assert "Someone else saved this product while you were editing it." in unescape(page)
    assert 'value="My Kettle"' in page
    assert "My careful\ndescription</textarea>" in page
    assert 'value="21.50"' in page
    saved_now = re.search(r'id="saved-meanwhile".*?</table>', page, re.S)
    assert saved_now
    assert "Their Kettle" in saved_now.group(0)
    assert '<th scope="row">Stock</th><td>9</td>' in saved_now.group(0)
    assert selectors.get_product(product_id=product.id, use_cache=False).name == "Their Kettle"

    # The form now stands on their version: saving again replaces it on purpose.
    current = selectors.get_product(product_id=product.id, use_cache=False)
    assert hidden(page, "seq_no") == str(current.seq_no)
    again = admin_client.post(
        url, {**typed, "seq_no": hidden(page, "seq_no"), "primary_term": hidden(page, "primary_term")}
    )
    assert again.status_code == 302
    final = selectors.get_product(product_id=product.id, use_cache=False)
    assert (final.name, final.description, final.price) == ("My Kettle", "My careful\ndescription", Decimal("21.50"))


def test_add_edit_and_deactivate_appear_in_recent_actions(catalog: str, admin_client: Client) -> None:
    sku = f"STF-{uuid.uuid4().hex[:8]}"
    fields = {"sku": sku, "name": "Logged Lamp", "category": "Home", "price": "5.00", "currency": "USD", "stock": 2}
    assert admin_client.post("/admin/catalog/products/add/", {**fields, "active": "on"}).status_code == 302
    product = selectors.get_product(product_id=sku.lower(), use_cache=False)
    edited = form_fields(product, name="Logged Lamp II", price="6.00")
    assert admin_client.post(f"/admin/catalog/products/{product.id}/change/", edited).status_code == 302
    deactivate = admin_client.post(f"/admin/catalog/products/{product.id}/active/", {"active": "0"})
    assert deactivate.status_code == 302

    entries = list(LogEntry.objects.filter(object_id=product.id).order_by("action_time", "pk"))
    assert [(e.action_flag, e.get_change_message()) for e in entries] == [
        (ADDITION, "Added."),
        (CHANGE, "Changed Name and Price."),
        (CHANGE, "Deactivated."),
    ]
    assert {e.content_type.name for e in entries} == {"product"}  # type: ignore[union-attr]

    index = admin_client.get("/admin/").content.decode()
    recent = re.search(r'id="recent-actions-module".*?</div>', index, re.S)
    assert recent
    assert recent.group(0).count(f'href="/admin/catalog/product/{product.id}/change/"') == 3
    assert "Logged Lamp II" in recent.group(0)
    followed = admin_client.get(f"/admin/catalog/product/{product.id}/change/")
    assert (followed.status_code, followed["Location"]) == (302, f"/admin/catalog/products/{product.id}/change/")


def test_products_are_in_the_admin_index_and_sidebar(catalog: str, admin_client: Client) -> None:
    index = admin_client.get("/admin/").content.decode()
    assert re.search(r'<a href="/admin/catalog/product/"[^>]*>Products</a>', index)
    assert 'href="/admin/catalog/product/add/"' in index
    sidebar = admin_client.get("/admin/accounts/user/").content.decode()
    assert re.search(r'id="nav-sidebar".*href="/admin/catalog/product/"', sidebar, re.S)
    listing = admin_client.get("/admin/catalog/product/")
    assert (listing.status_code, listing["Location"]) == (302, "/admin/catalog/products/")
    assert admin_client.get("/admin/catalog/product/add/")["Location"] == "/admin/catalog/products/add/"
    assert Client().get("/admin/catalog/product/")["Location"].startswith("/admin/login/")


def test_the_admin_header_names_the_shop(admin_client: Client) -> None:
    index = admin_client.get("/admin/").content.decode()
    assert re.search(r"<title>Shop administration \| shopcart admin</title>", index)
    assert re.search(r'<div id="site-name"><a href="/admin/">shopcart administration</a></div>', index)
    assert "<h1>Shop administration</h1>" in index
    login = Client().get("/admin/login/").content.decode()
    assert "shopcart administration" in login
    assert "Django administration" not in login
