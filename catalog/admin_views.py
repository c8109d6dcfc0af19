"""Staff pages for the products kept in Elasticsearch, inside the Django admin's look and navigation.

Each view is wrapped in `admin.site.admin_view` (see catalog/admin_urls.py): anyone who is not
active staff gets the admin login page, never the data.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from catalog import selectors, services
from catalog.errors import InvalidProduct, ProductChanged, ProductNotFound, SkuAlreadyExists
from catalog.forms import ProductFilterForm, ProductForm
from catalog.selectors import Product
from shopcart.request_bodies import takes_long_text

PAGE_SIZE = 50
CHANGED_MEANWHILE = (
    "Someone else saved this product while you were editing it. Your changes are below, not saved yet; "
    "what is saved now is listed above. Save again to replace it with yours."
)


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


def _input(form: ProductForm) -> services.ProductInput:
    data = form.cleaned_data
    return services.ProductInput(
        sku=data["sku"],
        name=data["name"],
        description=data["description"],
        category=data["category"],
        price=data["price"],
        currency=data["currency"],
        stock=data["stock"],
        image_url=data["image_url"],
        active=data["active"],
    )


def _add_service_errors(form: ProductForm, error: InvalidProduct | SkuAlreadyExists) -> None:
    for field, problems in (error.fields or {"__all__": [error.message]}).items():
        for problem in problems:
            form.add_error(field if field in form.fields else None, problem)


def product_list(request: HttpRequest) -> HttpResponse:
    form = ProductFilterForm(request.GET)
    params, _notes = form.usable_data()  # a bad parameter falls back on its own; staff need no note
    page = selectors.search_products(
        query=params.get("q", ""),
        category=params.get("category", ""),
        sort=params.get("sort") or "name",
        page=params.get("page") or 1,
        page_size=PAGE_SIZE,
        include_inactive=True,
    )
    return render(request, "admin/catalog/product_list.html", _context(request, "Products", page=page))


@takes_long_text
def product_add(request: HttpRequest) -> HttpResponse:
    form = ProductForm(request.POST or None, categories=selectors.category_names())
    if request.method == "POST" and form.is_valid():
        try:
            product = services.create_product(data=_input(form))
        except (InvalidProduct, SkuAlreadyExists) as error:
            _add_service_errors(form, error)
        else:
            services.record_staff_action(user_id=request.user.pk, product=product, action="added")
            messages.success(request, f"Created “{product.name}”.")
            return redirect("catalog_admin:product_list")
    return render(request, "admin/catalog/product_form.html", _context(request, "Add product", form=form))


def _form_over_newer_version(request: HttpRequest, current: Product) -> ProductForm:
    """The staff member's typed values again, now based on the version saved meanwhile: the page shows
    what differs, and saving again replaces that version on purpose (and only that one)."""
    data = request.POST.copy()
    data["seq_no"], data["primary_term"] = str(current.seq_no), str(current.primary_term)
    form = ProductForm(data, initial=_initial(current), categories=selectors.category_names())
    form.fields["sku"].disabled = True
    form.is_valid()
    return form


def _initial(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "price": product.price,
        "currency": product.currency,
        "stock": product.stock,
        "image_url": product.image_url,
        "active": product.active,
        "seq_no": product.seq_no,
        "primary_term": product.primary_term,
    }


@takes_long_text
def product_change(request: HttpRequest, product_id: str) -> HttpResponse:
    try:
        product = selectors.get_product(product_id=product_id, include_inactive=True, use_cache=False)
    except ProductNotFound as exc:
        raise Http404(exc.message) from exc
    form = ProductForm(request.POST or None, initial=_initial(product), categories=selectors.category_names())
    form.fields["sku"].disabled = True
    status, meanwhile = 200, []
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.update_product(
                product_id=product_id,
                data=_input(form),
                if_seq_no=form.cleaned_data["seq_no"],
                if_primary_term=form.cleaned_data["primary_term"],
            )
        except InvalidProduct as error:
            _add_service_errors(form, error)
        except ProductChanged:
            # Keep what was typed: the refusal must not throw the staff member's work away.
            newer = selectors.get_product(product_id=product_id, include_inactive=True, use_cache=False)
            meanwhile = _saved_values_that_differ(newer, form)
            form = _form_over_newer_version(request, newer)
            form.add_error(None, CHANGED_MEANWHILE)
            status = 409
        else:
            services.record_staff_action(user_id=request.user.pk, product=saved, action="changed", before=product)
            messages.success(request, f"Saved “{saved.name}”.")
            return redirect("catalog_admin:product_list")
    return render(
        request,
        "admin/catalog/product_form.html",
        _context(request, f"Change product {product.sku}", form=form, product=product, meanwhile=meanwhile),
        status=status,
    )


def _saved_values_that_differ(saved: Product, form: ProductForm) -> list[tuple[str, str]]:
    """(label, value saved now) for each field where what was typed differs from the saved product."""
    typed = services.validate_product_input(_input(form))
    shown = {
        "name": saved.name,
        "description": saved.description,
        "category": saved.category,
        "price_cents": str(saved.price),
        "currency": saved.currency,
        "stock": str(saved.stock),
        "image_url": saved.image_url or "(none: a generated image)",
        "active": "yes" if saved.active else "no",
    }
    return [
        (label, shown[field]) for field, label in services.FIELD_LABELS.items() if typed[field] != getattr(saved, field)
    ]


def _list_address(request: HttpRequest, target: str | None) -> str:
    """Where to go back to: the product list the staff member came from (its search and page kept), if
    `target` is one of this site's addresses; else the whole list."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("catalog_admin:product_list")


@require_safe
def product_deactivate_confirm(request: HttpRequest, product_id: str) -> HttpResponse:
    """ "Deactivate" asks first, on a page of its own (so it works without JavaScript): what it does, and a
    way back to the same list."""
    try:
        product = selectors.get_product(product_id=product_id, include_inactive=True, use_cache=False)
    except ProductNotFound as exc:
        raise Http404(exc.message) from exc
    back = _list_address(request, request.GET.get("next"))
    context = _context(request, f"Deactivate {product.sku}?", product=product, back=back)
    return render(request, "admin/catalog/product_deactivate.html", context)


@require_POST
def product_set_active(request: HttpRequest, product_id: str) -> HttpResponse:
    active = request.POST.get("active") == "1"
    try:
        product = services.set_product_active(product_id=product_id, active=active)
    except ProductNotFound as exc:
        raise Http404(exc.message) from exc
    services.record_staff_action(
        user_id=request.user.pk, product=product, action="activated" if active else "deactivated"
    )
    messages.success(request, f"“{product.name}” is now {'active' if active else 'deactivated'}.")
    return redirect(_list_address(request, request.POST.get("next")))
