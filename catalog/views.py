"""Catalog pages: the product list (with search, category filter and sort) and product detail."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from catalog import selectors
from catalog.errors import ProductNotFound
from catalog.forms import ProductFilterForm

PAGE_SIZE = 24


@require_safe
def product_list(request: HttpRequest) -> HttpResponse:
    form = ProductFilterForm(request.GET)
    params, notes = form.usable_data()
    page = selectors.search_products(
        query=params.get("q") or "",
        category=params.get("category") or "",
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
        {"page": page, "sort_labels": selectors.SORT_LABELS, "form": form, "notes": notes},
    )


@require_safe
def product_detail(request: HttpRequest, product_id: str) -> HttpResponse:
    try:
        product = selectors.get_product(product_id=product_id)
    except ProductNotFound as exc:
        raise Http404(exc.message) from exc
    return render(request, "catalog/product_detail.html", {"product": product})
