"""JSON API routes of the catalog (mounted under /api by shopcart/api.py)."""

from django.http import HttpRequest
from ninja import Query, Router

from catalog import selectors
from catalog.schemas import ProductOut, ProductPageOut, ProductQuery
from shopcart.http_errors import COMMON_ERROR_RESPONSES, ErrorOut

router = Router(tags=["catalog"])


@router.get(
    "/products", response={200: ProductPageOut, **COMMON_ERROR_RESPONSES}, summary="List or search active products"
)
def list_products(request: HttpRequest, params: Query[ProductQuery]) -> ProductPageOut:
    page = selectors.search_products(
        query=params.q, category=params.category, sort=params.sort, page=params.page, page_size=params.page_size
    )
    return ProductPageOut.from_page(page, site_url=request.build_absolute_uri("/"))


@router.get(
    "/products/{product_id}",
    response={200: ProductOut, 404: ErrorOut, **COMMON_ERROR_RESPONSES},
    summary="One active product",
)
def get_product(request: HttpRequest, product_id: str) -> ProductOut:
    product = selectors.get_product(product_id=product_id)
    return ProductOut.from_product(product, site_url=request.build_absolute_uri("/"))
