"""Cart pages. Thin: validate the form, call a service, say what happened, redirect (POST/redirect/GET).
Every refusal becomes an error message on the page the shopper came from, never an error page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cart import selectors, services
from cart.domain import Cart
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


def _form_change(
    request: HttpRequest, form_class: type[IdempotentForm], change: Callable[[Any], str], target: str | None = None
) -> HttpResponseRedirect:
    """The one shape of a cart form: validate it, make the change (a service call, returning what to tell
    the shopper), say so, redirect back. A refusal, an invalid form or a domain error, is refused the one
    way (`_refuse`)."""
    form = form_class(request.POST)
    if not form.is_valid():
        return _refuse(request, first_error(form), target)
    try:
        message = change(form)
    except DomainError as exc:
        return _refuse(request, exc.message, target)
    messages.success(request, message)
    return _back(request, target)


def _existing_cart_id(request: HttpRequest) -> str:
    """The cart a change of a line needs: a visitor who has none has no such line either."""
    cart_id = cart_id_for_request(request)
    if cart_id is None:
        raise LineNotFound()
    return cart_id


@require_POST
def add(request: HttpRequest) -> HttpResponse:
    def change(form: AddToCartForm) -> str:
        finish_pending_merge(request)
        cart_id = cart_id_for_request(request, create=True)
        assert cart_id is not None
        if request.session.modified:
            # A new guest cart's id (or a finished merge) is stored before the cart is written: with Redis
            # down this fails now, with a true "nothing was changed", not after writing a cart nobody finds.
            request.session.save()
        product_id, quantity = form.cleaned_data["product_id"], form.cleaned_data["quantity"]
        cart = services.add_item(cart_id=cart_id, product_id=product_id, quantity=quantity, idempotency_key=form.key())
        line = cart.line(product_id)
        name = line.name if line else "The product"
        total = f" You now have {line.quantity} in your cart." if line and line.quantity != quantity else ""
        return f"Added {quantity} of “{name}” to your cart.{total}"

    return _form_change(request, AddToCartForm, change, request.POST.get("next"))


@require_POST
def update(request: HttpRequest) -> HttpResponse:
    def change(form: UpdateQuantityForm) -> str:
        product_id, quantity = form.cleaned_data["product_id"], form.cleaned_data["quantity"]
        cart = services.set_quantity(
            cart_id=_existing_cart_id(request), product_id=product_id, quantity=quantity, idempotency_key=form.key()
        )
        if quantity == 0:  # the services removed the line: say so
            return _removed(cart, product_id)
        line = cart.line(product_id)
        return f"You now have {quantity} of “{line.name if line else product_id}” in your cart."

    return _form_change(request, UpdateQuantityForm, change)


@require_POST
def remove(request: HttpRequest) -> HttpResponse:
    def change(form: ProductForm) -> str:
        cart_id, product_id = _existing_cart_id(request), form.cleaned_data["product_id"]
        return _removed(
            services.remove_item(cart_id=cart_id, product_id=product_id, idempotency_key=form.key()), product_id
        )

    return _form_change(request, ProductForm, change)


def _removed(cart: Cart, product_id: str) -> str:
    """What a removed line ("Remove", or a quantity of 0) is told: its name, from the line the cart took out."""
    line = next((line for line in cart.removed if line.product_id == product_id), None)
    return f"Removed “{line.name if line else product_id}” from your cart."


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def clear(request: HttpRequest) -> HttpResponse:
    """GET asks first ("Empty the cart" is a link to here, so the question needs no JavaScript); POST empties."""
    if request.method != "POST":
        summary = selectors.get_summary(cart_id=cart_id_for_request(request))
        if summary.is_empty:
            return redirect("cart:detail")
        request.cart_summary = summary  # type: ignore[attr-defined]  # the header's count reads it
        return render(request, "cart/clear_confirm.html", {"summary": summary})

    def change(form: IdempotentForm) -> str:
        cart_id = cart_id_for_request(request)
        if cart_id is not None:
            services.clear_cart(cart_id=cart_id, idempotency_key=form.key())
        return "Your cart is empty now."

    return _form_change(request, IdempotentForm, change)
