"""Writes to the catalog. Every write, once acknowledged, retires what is cached about the products
it wrote on every replica at once (catalog.cache.bump)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from elasticsearch import ConflictError, NotFoundError
from elasticsearch.helpers import streaming_bulk

from catalog import cache as catalog_cache
from catalog import images, indexes
from catalog.documents import products_alias
from catalog.errors import InvalidProduct, ProductChanged, ProductNotFound, SkuAlreadyExists
from catalog.models import CATEGORY_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, SKU_MAX_LENGTH
from catalog.models import Product as ProductHandle
from catalog.selectors import Product, get_product
from shopcart import es
from shopcart.money import CURRENCIES, to_cents

SKU_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{SKU_MAX_LENGTH - 1}}}$")
# A price is at least a cent: a product saved at 0 could be bought for nothing by mistake (issue 17).
MIN_PRICE_CENTS = 1
MAX_PRICE_CENTS = 100_000_000
PRICE_MESSAGE = "Enter a price from 0.01 to 1,000,000.00, in digits with at most two decimals (like 12.50)."


def price_cents_of(price: Decimal | str) -> int | None:
    """`price` in cents, or None if the shop cannot sell at it: below MIN_PRICE_CENTS, above
    MAX_PRICE_CENTS, or finer than a cent."""
    try:
        cents = to_cents(price)
    except ValueError:
        return None
    return cents if MIN_PRICE_CENTS <= cents <= MAX_PRICE_CENTS else None


def too_long(text: str, *, limit: int) -> str | None:
    """What a text longer than `limit` characters is told (None if it fits): the staff form and the
    service say the same."""
    if len(text) <= limit:
        return None
    return f"Use at most {limit:,} characters; this has {len(text):,}."


def normalize_text(text: str) -> str:
    """A text field as stored: a browser sends each line break of a textarea as CRLF; one LF is kept, so
    a length counts what the staff member sees (and what the form's counter counted)."""
    return text.replace("\r\n", "\n").strip()


@dataclass(frozen=True)
class ProductInput:
    """The editable fields of a product, validated by `validate_product_input`."""

    sku: str
    name: str
    description: str
    category: str
    price: Decimal
    currency: str
    stock: int
    image_url: str = ""
    active: bool = True


def product_id_for_sku(sku: str) -> str:
    return sku.strip().lower()


def ensure_product_index() -> bool:
    """Create the product index and alias if missing (`manage.py seed`). True if created."""
    return indexes.ensure_product_index()


def upgrade_product_index() -> int | None:
    """Reindex into the current mapping if the product index has an older one (`manage.py seed`): the
    number of products copied, or None when it was current or missing."""
    return indexes.upgrade_product_index()


def drop_all_products() -> None:
    """Start from an empty catalog (`seed --reset`); what was cached about the old one is retired."""
    indexes.recreate_product_index()


def validate_product_input(data: ProductInput) -> dict[str, Any]:
    """The document fields for `data`; raises InvalidProduct naming each bad field."""
    fields: dict[str, list[str]] = {}
    if not SKU_PATTERN.match(data.sku.strip()):
        fields["sku"] = [f"Use 1-{SKU_MAX_LENGTH} letters, digits, dots, dashes or underscores."]
    name, category, description = (
        normalize_text(data.name),
        normalize_text(data.category),
        normalize_text(data.description),
    )
    if not name:
        fields["name"] = ["Enter the product's name."]
    elif problem := too_long(name, limit=NAME_MAX_LENGTH):
        fields["name"] = [problem]
    if not category:
        fields["category"] = ["Choose a category, or type a new one."]
    elif problem := too_long(category, limit=CATEGORY_MAX_LENGTH):
        fields["category"] = [problem]
    if problem := too_long(description, limit=DESCRIPTION_MAX_LENGTH):
        fields["description"] = [problem]
    if data.currency not in CURRENCIES:
        fields["currency"] = [f"One of {', '.join(sorted(CURRENCIES))}."]
    price_cents = price_cents_of(data.price)
    if price_cents is None:
        fields["price"] = [PRICE_MESSAGE]
    if not 0 <= data.stock <= 1_000_000:
        fields["stock"] = ["Stock from 0 to 1000000."]
    if problem := images.image_url_problem(data.image_url):
        fields["image_url"] = [problem]
    if fields:
        raise InvalidProduct("The product is invalid.", fields=fields)
    return {
        "sku": data.sku.strip(),
        "name": name,
        "description": description,
        "category": category,
        "price_cents": price_cents,
        "currency": data.currency,
        "stock": data.stock,
        "image_url": data.image_url.strip(),
        "active": data.active,
    }


@contextlib.contextmanager
def _bumped_whatever_happens(product_id: str) -> Iterator[None]:
    """Around a conditional product write (through the one non-retrying writer, es.writer): bump the
    product's cache once it is acknowledged, and also when its answer was lost (the write may have been
    applied: a bump too many costs a re-read, one too few serves a stale product). A refusal (a
    conflict) wrote nothing and bumps nothing."""
    try:
        yield
    except Exception as exc:
        if es.is_unavailable(exc):
            with contextlib.suppress(Exception):  # the 503 for the write is what the caller must see
                catalog_cache.bump(product_ids=[product_id])
        raise
    catalog_cache.bump(product_ids=[product_id])


# A staff edit must show in listings (a search) as soon as the editor sees "saved". An immediate refresh
# of the one shard does it in milliseconds; `wait_for` would hold the editor until the next scheduled
# refresh (up to refresh_interval, 1 s). Staff write one product at a time, so the small segment each
# refresh makes costs nothing that matters; bulk loads (seed, reindex) do not come this way.
STAFF_WRITE_REFRESH = True


def create_product(*, data: ProductInput) -> Product:
    """Create a product whose id is its lower-cased SKU; raises SkuAlreadyExists if that SKU is taken."""
    fields = validate_product_input(data)
    indexes.ensure_product_index()
    now = timezone.now()
    product_id = product_id_for_sku(fields["sku"])
    with _bumped_whatever_happens(product_id):
        try:
            # op_type=create makes the SKU unique: a second create of the same id is a 409, even under races.
            es.writer().index(
                index=products_alias(),
                id=product_id,
                document={**fields, "created_at": now, "updated_at": now},
                op_type="create",
                refresh=STAFF_WRITE_REFRESH,
            )
        except ConflictError:
            raise SkuAlreadyExists(
                f"A product with SKU {fields['sku']!r} exists already.", fields={"sku": ["This SKU is taken."]}
            ) from None
    return get_product(product_id=product_id, include_inactive=True, use_cache=False)


def update_product(
    *, product_id: str, data: ProductInput, if_seq_no: int | None = None, if_primary_term: int | None = None
) -> Product:
    """Replace a product's editable fields (the SKU stays). With `if_seq_no`/`if_primary_term` from the
    version the editor read, a concurrent change is refused with ProductChanged instead of overwritten."""
    fields = validate_product_input(data)
    current = get_product(product_id=product_id, include_inactive=True, use_cache=False)
    fields["sku"] = current.sku
    concurrency = {}
    if if_seq_no is not None and if_primary_term is not None:
        concurrency = {"if_seq_no": if_seq_no, "if_primary_term": if_primary_term}
    with _bumped_whatever_happens(product_id):
        try:
            es.writer().index(
                index=products_alias(),
                id=product_id,
                document={**fields, "created_at": current.created_at, "updated_at": timezone.now()},
                refresh=STAFF_WRITE_REFRESH,
                **concurrency,
            )
        except ConflictError:
            raise ProductChanged("Someone else changed this product meanwhile; reload it and try again.") from None
    return get_product(product_id=product_id, include_inactive=True, use_cache=False)


def set_product_active(*, product_id: str, active: bool) -> Product:
    try:
        es.client().update(
            index=products_alias(),
            id=product_id,
            doc={"active": active, "updated_at": timezone.now()},
            refresh=STAFF_WRITE_REFRESH,
            retry_on_conflict=3,
        )
    except NotFoundError:
        raise ProductNotFound(f"No product with id {product_id!r}.") from None
    catalog_cache.bump(product_ids=[product_id])
    return get_product(product_id=product_id, include_inactive=True, use_cache=False)


# The staff form's labels for the fields a change message names.
FIELD_LABELS = {
    "name": "Name",
    "description": "Description",
    "category": "Category",
    "price_cents": "Price",
    "currency": "Currency",
    "stock": "Stock",
    "image_url": "Image URL",
    "active": "Active",
}


def changed_fields(before: Product, after: Product) -> list[str]:
    return [label for field, label in FIELD_LABELS.items() if getattr(before, field) != getattr(after, field)]


def record_staff_action(*, user_id: int, product: Product, action: str, before: Product | None = None) -> LogEntry:
    """One entry in the admin's history ("Recent actions") for a staff action on a product: `action` is
    "added", "changed" (naming the fields that differ from `before`), "activated" or "deactivated".
    Products are not rows, so the entry's content type is catalog.models.Product's and its object id is
    the product id; the admin links it to the staff edit page."""
    if action == "added":
        flag, message = ADDITION, [{"added": {}}]
    elif action == "changed":
        flag, message = CHANGE, [{"changed": {"fields": changed_fields(before, product) if before else []}}]
    elif action in ("activated", "deactivated"):
        flag, message = CHANGE, f"{action.capitalize()}."
    else:
        raise ValueError(f"unknown staff action {action!r}")
    return LogEntry.objects.create(
        user_id=user_id,
        content_type=ContentType.objects.get_for_model(ProductHandle, for_concrete_model=False),
        object_id=product.id,
        object_repr=product.name[:200],
        action_flag=flag,
        change_message=message if isinstance(message, str) else json.dumps(message),
    )


def bulk_load_products(
    *, products: Iterable[dict[str, Any]], chunk_size: int = 2000, on_progress: Callable[[int], None] | None = None
) -> int:
    """Index product dicts (document fields plus `id`) in bulk. Products whose id exists already are
    left exactly as they are (op_type=create), so loading the same set twice changes nothing.
    Returns how many were created."""
    indexes.ensure_product_index()
    client = es.admin_client()
    now = timezone.now()

    def actions() -> Iterator[dict[str, Any]]:
        for product in products:
            source = {key: value for key, value in product.items() if key != "id"}
            source.setdefault("created_at", now)
            source.setdefault("updated_at", now)
            yield {"_op_type": "create", "_index": products_alias(), "_id": product["id"], "_source": source}

    created = seen = 0
    for ok, item in streaming_bulk(client, actions(), chunk_size=chunk_size, raise_on_error=False):
        seen += 1
        if ok:
            created += 1
        elif item["create"].get("status") != 409:  # 409: it exists already, which is fine
            raise RuntimeError(f"bulk load failed: {item}")
        if on_progress and seen % chunk_size == 0:
            on_progress(seen)
    client.indices.refresh(index=products_alias())
    if created:
        # Listings change; offers do not: a bulk load only creates products (an existing one is left as
        # it is), and a product that did not exist is in no offer hash (only found products are cached).
        catalog_cache.bump(product_ids=())
    if on_progress:
        on_progress(seen)
    return created
