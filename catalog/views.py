"""Catalog pages: the product list (with search, category filter and sort) and product detail."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from catalog import images, selectors
from catalog.errors import ProductNotFound, UnknownCategory
from catalog.forms import ProductFilterForm

PAGE_SIZE = 24
# A generated picture changes only with the product's name or category, and its address then changes
# too (?v=<fingerprint>): browsers and proxies may keep it a day. A staff address may be edited at
# any time, so the redirect to it is kept only a few minutes.
GENERATED_IMAGE_MAX_AGE = 24 * 60 * 60
IMAGE_REDIRECT_MAX_AGE = 5 * 60


@require_safe
def product_list(request: HttpRequest) -> HttpResponse:
    # No parameters (the shop's front page, most of its views): nothing to validate or tell.
    params, notes = ProductFilterForm(request.GET).usable_data() if request.GET else ({}, [])
    category = params.get("category") or ""
    if category:
        try:
            category = selectors.category_of(category)
        except UnknownCategory as exc:
            context = {"status": 404, "title": "No such category", "unknown": exc.name, "categories": exc.categories}
            return render(request, "catalog/unknown_category.html", context, status=404)
    page = selectors.search_products(
        query=params.get("q") or "",
        category=category,
        sort=params.get("sort") or "",
        page=params.get("page") or 1,
        page_size=PAGE_SIZE,
    )
    if page.total and page.page > page.pages:
        # Past the end (an old link, a hand-typed number): the last page, not "No products match".
        query = request.GET.copy()
        query["page"] = str(page.pages)
        return redirect(f"{request.path}?{query.urlencode()}")
    return render(
        request,
        "catalog/product_list.html",
        # search_query: what the header's search box shows, the query as it was searched for.
        {"page": page, "sort_labels": selectors.SORT_LABELS, "notes": notes, "search_query": page.query},
    )


@require_safe
def product_detail(request: HttpRequest, product_id: str) -> HttpResponse:
    try:
        product = selectors.get_product(product_id=product_id, include_inactive=True)
    except ProductNotFound as exc:
        raise Http404(exc.message) from exc
    if not product.active:
        # 410 Gone: it was here and was withdrawn; say so, and offer its category if that still sells.
        try:
            category = selectors.category_of(product.category)
        except UnknownCategory:
            category = ""
        context = {"status": 410, "title": "No longer available", "product": product, "category": category}
        return render(request, "catalog/product_gone.html", context, status=410)
    return render(request, "catalog/product_detail.html", {"product": product})


@require_safe
def product_image(request: HttpRequest, product_id: str) -> HttpResponse:
    """The product's picture: a redirect to the staff's image address, or the generated SVG (always with
    ?generated=1: what a page falls back on when the staff's address fails)."""
    try:
        # Deactivated products too: a cart may still list one.
        product = selectors.get_product(product_id=product_id, include_inactive=True)
    except ProductNotFound as exc:
        raise Http404(exc.message) from exc
    if images.has_own_image(product) and not request.GET.get(images.GENERATED_ONLY):
        response: HttpResponse = HttpResponseRedirect(product.image_url)
        response["Cache-Control"] = f"public, max-age={IMAGE_REDIRECT_MAX_AGE}"
        return response
    etag = f'"{images.fingerprint(product)}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(images.generated_svg(product), content_type="image/svg+xml")
        # Opened on its own, an SVG is a document: no scripts, no loads, whatever it contains.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        response["X-Content-Type-Options"] = "nosniff"
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={GENERATED_IMAGE_MAX_AGE}"
    return response
