"""Product images: the address staff gave (http or https only), or else a picture generated from the
product itself, so every product has one and no two look alike.

The generated picture is an SVG drawn deterministically from the product's id, name and category:
the category picks the hue family, the id's hash places and colours the shapes, and the name gives
the initials and the title. It is served by `catalog.views.product_image` at
`/products/<id>/image?v=<fingerprint>`; the fingerprint changes when the name or category does, so
the long browser cache never shows an outdated picture."""

from __future__ import annotations

import hashlib
import re
from html import escape
from typing import Protocol
from urllib.parse import quote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS

from shopcart.reversing import reverse_once

# Bump when the drawing changes, so browsers fetch the new pictures.
GENERATOR_VERSION = "1"
# The query parameter that asks for the generated picture whatever the product has (a page's fallback).
GENERATED_ONLY = "generated"
IMAGE_URL_MAX_LENGTH = 500
IMAGE_URL_ERROR = "Enter the image's full http:// or https:// address, or leave it empty for a generated image."
_url_validator = URLValidator(schemes=["http", "https"])
# Characters XML 1.0 does not allow, even escaped: a name containing one would break the whole SVG.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class Imaged(Protocol):
    id: str
    name: str
    category: str
    image_url: str


def image_url_problem(url: str) -> str | None:
    """Why `url` cannot be a product's image address (None if it can; empty means "generate one").
    Only absolute http(s) URLs: `javascript:`, `data:` and relative paths are refused."""
    url = url.strip()
    if not url:
        return None
    if len(url) > IMAGE_URL_MAX_LENGTH:
        return f"Use at most {IMAGE_URL_MAX_LENGTH} characters."
    try:
        _url_validator(url)
    except ValidationError:
        return IMAGE_URL_ERROR
    return None


def has_own_image(product: Imaged) -> bool:
    # Checked again when shown: documents written before the rule (a relative /static/ path) fall
    # back to the generated picture instead of being shown as they are.
    return bool(product.image_url) and urlsplit(product.image_url).scheme in ("http", "https")


def fingerprint(product: Imaged) -> str:
    source = f"{GENERATOR_VERSION}\x00{product.id}\x00{product.name}\x00{product.category}"
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# A listing's 24 pictures' addresses were ~30 % of a search's CPU in the API (bench/README.md). So the
# address is reversed once (shopcart.reversing) with a stand-in id, and each product's id goes where the
# stand-in was, quoted exactly as reverse() quotes it (percent-encoding works character by character).
_ID_STAND_IN = "image-id-stand-in"


def _image_path(product_id: str) -> str:
    if not product_id or "/" in product_id:  # what the URL's <str:> refuses: reverse() says why
        return reverse("catalog:product_image", args=[product_id])
    around = reverse_once("catalog:product_image", _ID_STAND_IN).split(_ID_STAND_IN)
    return quote(product_id, safe=RFC3986_SUBDELIMS + "/~:@").join(around)


def generated_image_path(product: Imaged) -> str:
    return f"{_image_path(product.id)}?v={fingerprint(product)}"


def generated_fallback_path(product_id: str) -> str:
    """The generated picture even of a product with a staff image: what a page shows instead when the
    staff's address fails to load (shopcart/static/shopcart/image_fallback.js)."""
    return f"{_image_path(product_id)}?{GENERATED_ONLY}=1"


def image_src(product: Imaged) -> str:
    """What an <img src> shows for `product`: the staff's address, else the generated picture."""
    return product.image_url if has_own_image(product) else generated_image_path(product)


def _xml_text(text: str) -> str:
    return escape(_NOT_XML.sub("", text), quote=True)


def _initials(name: str) -> str:
    words = [word for word in re.split(r"[^\w]+", name) if word]
    return "".join(word[0] for word in words[:2]).upper() or "?"


def generated_svg(product: Imaged) -> str:
    """The product's picture: a gradient in its category's hue family, five shapes placed by its id,
    its initials, and its name as the title. Every piece of product text is XML-escaped."""
    digest = hashlib.sha256(f"{product.id}\x00{product.name}".encode("utf-8", "surrogatepass")).digest()
    category_hue = int.from_bytes(hashlib.sha256(product.category.encode("utf-8", "surrogatepass")).digest()[:2])
    hue = (category_hue + digest[0] % 40 - 20) % 360
    accent = (hue + 150 + digest[1] % 60) % 360
    shapes = []
    for i in range(5):
        b = digest[2 + i * 5 : 7 + i * 5]
        x, y, size = 20 + b[0] % 200, 20 + b[1] % 200, 24 + b[2] % 70
        fill = f"hsl({(accent + b[3] % 90) % 360},70%,{45 + b[4] % 30}%)"
        opacity = f"{0.35 + (b[4] % 40) / 100:.2f}"
        if b[3] % 2:
            shapes.append(f'<circle cx="{x}" cy="{y}" r="{size // 2}" fill="{fill}" fill-opacity="{opacity}"/>')
        else:
            angle = b[2] % 90
            shapes.append(
                f'<rect x="{x - size // 2}" y="{y - size // 2}" width="{size}" height="{size}" rx="{size // 6}" '
                f'fill="{fill}" fill-opacity="{opacity}" transform="rotate({angle} {x} {y})"/>'
            )
    name = _xml_text(product.name)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 240" width="240" height="240" role="img" '
        f'aria-label="{name}">'
        f"<title>{name}</title>"
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},65%,38%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 40) % 360},70%,22%)"/>'
        "</linearGradient></defs>"
        '<rect width="240" height="240" fill="url(#g)"/>'
        f"{''.join(shapes)}"
        '<text x="120" y="138" font-family="sans-serif" font-size="64" font-weight="700" fill="#fff" '
        f'text-anchor="middle" fill-opacity="0.92">{_xml_text(_initials(product.name))}</text>'
        "</svg>"
    )
