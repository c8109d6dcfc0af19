"""Cart pages. Thin: validate the form, call a service, say what happened, redirect (POST/redirect/GET).
Every refusal becomes an error message on the page the shopper came from, never an error page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from cart import selectors, services
from cart.errors import LineNotFound
from cart.forms import AddToCartForm, IdempotentForm, ProductForm, UpdateQuantityForm, first_error
from cart.guest_merge import merge_guest_cart
from cart.owners import cart_id_for_request
from shopcart.errors import DomainError


def _safe_next(request: HttpRequest, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("cart:detail")


def _back(request: HttpRequest, target: str | None = None) -> HttpResponseRedirect:
    return redirect(_safe_next(request, target))


def _refuse(request: HttpRequest, message: str, target: str | None = None) -> HttpResponseRedirect:
    """The one way a cart form is refused (invalid form, no cart, a domain error from the service): an
    error message on the page the shopper came from, never an error page."""
    messages.error(request, message)
    return _back(request, target)


def finish_pending_merge(request: HttpRequest) -> None:
    """A signed-in user whose session still names a guest cart (the merge at log-in failed, say
    Elasticsearch was briefly down): merge it now, as at log-in. Tried again on the next page if it fails."""
    if request.user.is_authenticated:
        merge_guest_cart(request, user=request.user)


@never_cache
@require_safe
def detail(request: HttpRequest) -> HttpResponse:
    finish_pending_merge(request)
    summary = selectors.get_summary(cart_id=cart_id_for_request(request))
    request.cart_summary = summary  # type: ignore[attr-defined]  # the header's count reads it (no second read)
    return render(request, "cart/detail.html", {"summary": summary})  # max_quantity: cart.context_processors


@require_POST
def add(request: HttpRequest) -> HttpResponse:
    form = AddToCartForm(request.POST)
    target = request.POST.get("next")
    if not form.is_valid():
        return _refuse(request, first_error(form), target)
    finish_pending_merge(request)
    cart_id = cart_id_for_request(request, create=True)
    assert cart_id is not None
    if request.session.modified:
        # A new guest cart's id (or a finished merge) is stored before the cart is written: with Redis
        # down this fails now, with a true "nothing was changed", not after writing a cart nobody finds.
        request.session.save()
    quantity = form.cleaned_data["quantity"]
    try:
        cart = services.add_item(
            cart_id=cart_id, product_id=form.cleaned_data["product_id"], quantity=quantity, idempotency_key=form.key()
        )
    except DomainError as exc:
        return _refuse(request, exc.message, target)
    line = cart.line(form.cleaned_data["product_id"])
    name = line.name if line else "The product"
    total = f" You now have {line.quantity} in your cart." if line and line.quantity != quantity else ""
    messages.success(request, f"Added {quantity} of “{name}” to your cart.{total}")
    return _back(request, target)


@require_POST
def update(request: HttpRequest) -> HttpResponse:
    form = UpdateQuantityForm(request.POST)
    if not form.is_valid():
        return _refuse(request, first_error(form))
    cart_id = cart_id_for_request(request)
    product_id = form.cleaned_data["product_id"]
    quantity = form.cleaned_data["quantity"]
    if cart_id is None:
        return _refuse(request, LineNotFound.default_message)
    try:
        cart = services.set_quantity(
            cart_id=cart_id, product_id=product_id, quantity=quantity, idempotency_key=form.key()
        )
    except DomainError as exc:
        return _refuse(request, exc.message)
    line = cart.line(product_id)
    messages.success(request, f"You now have {quantity} of “{line.name if line else product_id}” in your cart.")
    return _back(request)


@require_POST
def remove(request: HttpRequest) -> HttpResponse:
    form = ProductForm(request.POST)
    if not form.is_valid():
        return _refuse(request, first_error(form))
    cart_id = cart_id_for_request(request)
    product_id = form.cleaned_data["product_id"]
    if cart_id is None:
        return _refuse(request, LineNotFound.default_message)
    before = selectors.get_cart(cart_id=cart_id).line(product_id)
    try:
        services.remove_item(cart_id=cart_id, product_id=product_id, idempotency_key=form.key())
    except DomainError as exc:
        return _refuse(request, exc.message)
    messages.success(request, f"Removed “{before.name if before else product_id}” from your cart.")
    return _back(request)


@require_POST
def clear(request: HttpRequest) -> HttpResponse:
    form = IdempotentForm(request.POST)
    form.is_valid()  # an optional token only: nothing to refuse
    cart_id = cart_id_for_request(request)
    if cart_id is not None:
        try:
            services.clear_cart(cart_id=cart_id, idempotency_key=form.key())
        except DomainError as exc:
            return _refuse(request, exc.message)
    messages.success(request, "Your cart is empty now.")
    return _back(request)
