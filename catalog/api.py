"""JSON API routes of the catalog (mounted under /api by shopcart/api.py)."""

from functools import partial

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from catalog import selectors
from catalog.schemas import ProductOut, ProductPageOut, ProductQuery, SuggestionQuery, SuggestionsOut, page_json
from shopcart.http_errors import COMMON_ERROR_RESPONSES, ErrorOut
from shopcart.reversing import reverse_once

router = Router(tags=["catalog"])
# What django-ninja's JSON renderer answers with.
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@router.get(
    "/products",
    response={200: ProductPageOut, 404: ErrorOut, **COMMON_ERROR_RESPONSES},
    summary="List or search active products",
    description="`category` matches in any letter case; a category no active product has is 404 "
    "`unknown_category`, whose message lists the categories there are.",
)
def list_products(request: HttpRequest, params: Query[ProductQuery]) -> HttpResponse:
    # The answer's JSON is cached as bytes (one per site address: the image URLs are absolute) and sent
    # as it is; the declared response schema (OpenAPI) is what schemas.page_json writes.
    site_url = request.build_absolute_uri("/")
    content = selectors.search_products_rendered(
        partial(page_json, site_url=site_url),
        variant=f"api-json:{site_url}",
        query=params.q,
        category=selectors.category_of(params.category) if params.category.strip() else "",
        sort=params.sort,
        page=params.page,
        page_size=params.page_size,
    )
    return HttpResponse(content, content_type=JSON_CONTENT_TYPE)


@router.get(
    "/products/{product_id}",
    response={200: ProductOut, 404: ErrorOut, **COMMON_ERROR_RESPONSES},
    summary="One active product",
    description="404 `product_not_found`, or `product_no_longer_available` for a product staff withdrew.",
)
def get_product(request: HttpRequest, product_id: str) -> ProductOut:
    product = selectors.get_product(product_id=product_id)
    return ProductOut.from_product(product, site_url=request.build_absolute_uri("/"))


@router.get(
    "/suggestions",
    response={200: SuggestionsOut, **COMMON_ERROR_RESPONSES},
    summary="Products to suggest while a search is typed",
    url_name="suggestions",
)
def suggestions(request: HttpRequest, params: Query[SuggestionQuery]) -> SuggestionsOut:
    """What the search box lists under itself as the shopper types: the first `limit` products the search
    for `q` would list (whole words first, then plurals, then words that begin with the last word typed,
    then typos). Fewer than 2 characters: none."""
    found = selectors.suggest_products(query=params.q, limit=params.limit)
    return SuggestionsOut.of(
        params.q.strip(),
        found,
        product_url=lambda product_id: request.build_absolute_uri(reverse_once("catalog:product_detail", product_id)),
    )
