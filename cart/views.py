"""Cart pages. Thin: validate the form, call a service, say what happened, redirect (POST/redirect/GET).
Every refusal becomes an error message on the page the shopper came from, never an error page."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from cart import conf, selectors, services
from cart.forms import AddToCartForm, IdempotentForm, ProductForm, UpdateQuantityForm, first_error
from cart.owners import SESSION_KEY, anonymous_cart_id, cart_id_for_request, session_anon_id
from shopcart.errors import DomainError

logger = logging.getLogger(__name__)


def _safe_next(request: HttpRequest, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("cart:detail")


def _back(request: HttpRequest, target: str | None = None) -> HttpResponseRedirect:
    return redirect(_safe_next(request, target))


def finish_pending_merge(request: HttpRequest) -> None:
    """A signed-in user whose session still names an anonymous cart (the merge at log-in failed, say
    Elasticsearch was briefly down): merge it now. Best effort; it is tried again on the next page."""
    user = request.user
    anon_id = session_anon_id(request)
    if anon_id is None or not user.is_authenticated:
        return
    try:
        result = services.merge_anonymous_cart(anon_cart_id=anonymous_cart_id(anon_id), user_id=user.pk)
    except Exception:  # the page must still render; the merge is retried next time
        logger.warning("merging the anonymous cart of user %s failed; will retry", user.pk, exc_info=True)
        return
    request.session.pop(SESSION_KEY, None)
    if result.added_items:
        messages.info(request, f"We added {result.added_items} item(s) from before you logged in to your cart.")


@never_cache
@require_GET
def detail(request: HttpRequest) -> HttpResponse:
    finish_pending_merge(request)
    summary = selectors.get_summary(cart_id=cart_id_for_request(request))
    return render(request, "cart/detail.html", {"summary": summary, "max_quantity": conf.max_quantity()})


@require_POST
def add(request: HttpRequest) -> HttpResponse:
    form = AddToCartForm(request.POST)
    target = request.POST.get("next")
    if not form.is_valid():
        messages.error(request, first_error(form))
        return _back(request, target)
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
        messages.error(request, exc.message)
        return _back(request, target)
    line = cart.line(form.cleaned_data["product_id"])
    name = line.name if line else "The product"
    total = f" You now have {line.quantity} in your cart." if line and line.quantity != quantity else ""
    messages.success(request, f"Added {quantity} of “{name}” to your cart.{total}")
    return _back(request, target)


@require_POST
def update(request: HttpRequest) -> HttpResponse:
    form = UpdateQuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, first_error(form))
        return _back(request)
    cart_id = cart_id_for_request(request)
    product_id = form.cleaned_data["product_id"]
    quantity = form.cleaned_data["quantity"]
    if cart_id is None:
        messages.error(request, "This product is not in your cart.")
        return _back(request)
    try:
        cart = services.set_quantity(
            cart_id=cart_id, product_id=product_id, quantity=quantity, idempotency_key=form.key()
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request)
    line = cart.line(product_id)
    messages.success(request, f"Updated “{line.name if line else product_id}” to {quantity}.")
    return _back(request)


@require_POST
def remove(request: HttpRequest) -> HttpResponse:
    form = ProductForm(request.POST)
    if not form.is_valid():
        messages.error(request, first_error(form))
        return _back(request)
    cart_id = cart_id_for_request(request)
    product_id = form.cleaned_data["product_id"]
    if cart_id is None:
        messages.error(request, "This product is not in your cart.")
        return _back(request)
    before = selectors.get_cart(cart_id=cart_id).line(product_id)
    try:
        services.remove_item(cart_id=cart_id, product_id=product_id, idempotency_key=form.key())
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request)
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
            messages.error(request, exc.message)
            return _back(request)
    messages.success(request, "Your cart is empty now.")
    return _back(request)
