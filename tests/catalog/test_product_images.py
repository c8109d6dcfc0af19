"""Product images (catalog.images): staff image addresses (http/https only), generated SVGs for every
other product, the image endpoint's headers, and the pictures on the shop's pages and in the API."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from html import escape

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from catalog import images, selectors, services
from catalog.errors import InvalidProduct
from catalog.seeding import fixture_products
from catalog.services import ProductInput
from tests.support import catalog as catalog_support

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"


def product_input(**overrides: object) -> ProductInput:
    fields: dict[str, object] = {"name": "Picture Teapot", "description": "A teapot.", **overrides}
    return catalog_support.product_input(sku_prefix="IMG", **fields)


REFUSED = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)//https://x.example/a.png",
    "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
    "/static/catalog/img/kitchen.svg",
    "not a url",
    "ftp://files.example.com/a.png",
    "https://",
    "https://" + "a" * 500 + ".example.com/a.png",
]


@pytest.mark.parametrize("url", REFUSED)
def test_image_addresses_other_than_http_and_https_are_refused(url: str) -> None:
    assert images.image_url_problem(url)
    with pytest.raises(InvalidProduct) as refused:
        services.validate_product_input(product_input(image_url=url))
    assert set(refused.value.fields) == {"image_url"}


@pytest.mark.parametrize("url", ["", "https://img.example.com/teapot.png", " http://cdn.example.org/a/b.jpg?w=240 "])
def test_http_and_https_image_addresses_and_none_are_accepted(url: str) -> None:
    assert images.image_url_problem(url) is None
    assert services.validate_product_input(product_input(image_url=url))["image_url"] == url.strip()


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>"])
def test_the_staff_form_refuses_a_bad_image_address_with_a_field_error(
    catalog: str, admin_client: Client, url: str
) -> None:
    sku = f"IMG-{uuid.uuid4().hex[:8]}"
    fields = {"sku": sku, "name": "Bad Picture", "category": "Kitchen", "price": "1.00", "currency": "USD"}
    response = admin_client.post("/admin/catalog/products/add/", {**fields, "stock": 1, "image_url": url})
    assert response.status_code == 200
    page = response.content.decode()
    assert escape(images.IMAGE_URL_ERROR) in page
    assert re.search(r'class="form-row errors[^"]*"[^>]*>\s*<ul class="errorlist', page)
    assert Client().get(f"/products/{sku.lower()}").status_code == 404


def test_a_staff_image_address_is_shown_and_the_image_route_redirects_to_it(catalog: str, admin_client: Client) -> None:
    sku = f"IMG-{uuid.uuid4().hex[:8]}"
    url = "https://img.example.com/teapot.png"
    fields = {"sku": sku, "name": "Real Picture", "category": "Kitchen", "price": "1.00", "currency": "USD"}
    response = admin_client.post(
        "/admin/catalog/products/add/", {**fields, "stock": 1, "image_url": url, "active": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    product_id = sku.lower()

    assert f'src="{url}" alt="Real Picture"' in Client().get(f"/products/{product_id}").content.decode()
    redirect = Client().get(f"/products/{product_id}/image")
    assert (redirect.status_code, redirect["Location"]) == (302, url)
    assert Client().get(f"/api/products/{product_id}").json()["imageUrl"] == url


def test_seed_products_get_distinct_generated_images() -> None:
    products = [selectors._from_source(p["id"], p) for p in fixture_products()[:2]]
    first, second = products
    assert first.category == second.category  # same category, still two pictures
    assert first.image_url == second.image_url == ""
    assert first.image_src != second.image_src
    assert images.generated_svg(first) != images.generated_svg(second)
    every_picture = {images.generated_svg(selectors._from_source(p["id"], p)) for p in fixture_products()}
    assert len(every_picture) == len(fixture_products())


def test_the_image_endpoint_answers_svg_with_caching_headers(catalog: str) -> None:
    product = selectors.get_product(product_id="kit-0001")
    response = Client().get(product.image_src)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "public, max-age=86400"
    assert response["ETag"] == f'"{images.fingerprint(product)}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response["Content-Security-Policy"]
    root = ET.fromstring(response.content)  # noqa: S314 (our own SVG)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == product.name  # type: ignore[union-attr]

    again = Client().get(product.image_src, HTTP_IF_NONE_MATCH=response["ETag"])
    assert (again.status_code, again.content) == (304, b"")
    assert Client().get("/products/no-such-product/image").status_code == 404


def test_a_hostile_name_is_escaped_inside_the_svg(catalog: str) -> None:
    hostile = '<script>alert(1)</script>"/><svg onload="alert(2)"> & \x01Kettle'
    product = services.create_product(data=product_input(name=hostile))
    body = Client().get(product.image_src).content.decode()
    assert "<script" not in body
    assert "onload=" not in body.replace("onload=&quot;", "")
    # Still well-formed XML (the control character is dropped).
    root = ET.fromstring(body)  # noqa: S314 (our own SVG)
    assert root.find(f"{SVG}title").text == hostile.replace("\x01", "")  # type: ignore[union-attr]
    assert len(root.findall(f"{SVG}script")) == 0


def test_pictures_on_the_list_search_product_and_cart_pages(catalog: str) -> None:
    product = selectors.get_product(product_id="kit-0001")
    tag = f'src="{product.image_src}" alt="{product.name}"'.replace("'", "&#x27;")
    assert tag in Client().get("/", {"category": "Kitchen"}).content.decode()
    assert tag in Client().get("/search", {"q": "chef"}).content.decode()
    assert tag in Client().get(f"/products/{product.id}").content.decode()

    shopper = Client()
    assert shopper.post("/cart/add", {"product_id": product.id, "quantity": "1"}).status_code == 302
    cart = shopper.get("/cart/").content.decode()
    assert f'src="/products/{product.id}/image" alt="{product.name}"'.replace("'", "&#x27;") in cart


def test_the_api_gives_each_product_an_absolute_image_url(catalog: str) -> None:
    items = Client().get("/api/products", {"category": "Kitchen", "page_size": 3}).json()["items"]
    for item in items:
        assert re.fullmatch(rf"http://testserver/products/{item['id']}/image\?v=[0-9a-f]{{12}}", item["imageUrl"])
    assert len({item["imageUrl"] for item in items}) == 3
    assert Client().get(items[0]["imageUrl"]).status_code == 200


@pytest.mark.parametrize("product_id", ["kit-0001", "p 1", "ü-é", "a?b#c%d", "x:y@z~1", "semi;colon&+=,", "e\u0301"])
def test_the_generated_image_address_is_exactly_what_reverse_gives(product_id: str) -> None:
    """The address is reversed once and the id put in (images._image_path): byte for byte reverse()'s."""
    assert images._image_path(product_id) == reverse("catalog:product_image", args=[product_id])
    with override_settings(FORCE_SCRIPT_NAME="/shop/"):
        from django.urls import set_script_prefix

        set_script_prefix("/shop/")
        try:
            assert images._image_path(product_id) == reverse("catalog:product_image", args=[product_id])
            assert images._image_path(product_id).startswith("/shop/products/")
        finally:
            set_script_prefix("/")


@pytest.mark.parametrize(
    ("site_url", "src"),
    [
        ("http://testserver/", "/products/kit-0001/image?v=abc"),
        ("https://shop.example:8443/", "/shop/products/a%20b/image?v=1"),
        ("http://testserver/", "https://images.example/x.png"),
        ("http://testserver/", "//cdn.example/x.png"),
        ("http://testserver/", "/products/../image?v=1"),
    ],
)
def test_the_api_image_url_is_what_urljoin_gives(site_url: str, src: str) -> None:
    from urllib.parse import urljoin

    from catalog.schemas import _absolute

    assert _absolute(site_url, src) == urljoin(site_url, src)
