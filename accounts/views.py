"""Account pages: thin views that parse a form, call a service and render. Django's auth views do
log-out and password change; sign-up, log-in and the account page (name, email, deletion) call
accounts.services (throttling, validation)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django.views.generic.edit import FormView

from accounts import selectors, services
from accounts.errors import (
    EmailChangeLinkInvalid,
    EmailTaken,
    InvalidCredentials,
    LoginThrottled,
    PasswordResetThrottled,
)
from accounts.forms import (
    DeleteAccountForm,
    EmailChangeForm,
    LoginForm,
    NameForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
    SignupForm,
)
from accounts.http import client_address
from shopcart.errors import DomainError, Throttled

# Service field names that differ from the form's.
_SIGNUP_FIELDS = {"name": "name", "email": "email", "password": "password1"}


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _add_errors(form: forms.Form, error: DomainError, *, rename: dict[str, str] | None = None) -> None:
    """A service's refusal on the form: each field's messages on that field (`rename`: the form's name for
    a service field), anything else above the form."""
    for field, field_messages in (error.fields or {None: [error.message]}).items():
        name = (rename or {}).get(field or "", field)
        for message in field_messages:
            form.add_error(name if name in form.fields else None, message)


def _throttled(response: HttpResponse, error: Throttled) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(error.retry_after)
    return response


def _already_logged_in(request: HttpRequest) -> HttpResponseRedirect:
    """Sign-up and log-in are for visitors: a logged-in user is sent on (to `next`, never back here)."""
    messages.info(request, f"You are already logged in as {request.user.email}. To use another account, log out first.")
    target = _safe_next(request)
    return HttpResponseRedirect(
        resolve_url(settings.LOGIN_REDIRECT_URL) if urlsplit(target).path == request.path else target
    )


@sensitive_post_parameters("password1", "password2")
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return _already_logged_in(request)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            # One transaction with the log-in: if the session cannot be stored (Redis down) the account
            # is rolled back too, so the 503 the visitor gets is true and signing up again works.
            with transaction.atomic():
                user = services.register_user(name=data["name"], email=data["email"], password=data["password1"])
                auth_login(request, user)  # new session key (see LoginView); the one backend vouches
        except DomainError as exc:  # InvalidRegistration, EmailTaken
            _add_errors(form, exc, rename=_SIGNUP_FIELDS)
        else:
            messages.success(request, f"Welcome, {user.name}! Your account is ready.")
            return HttpResponseRedirect(_safe_next(request))
    return render(request, "accounts/signup.html", {"form": form, "next": request.GET.get("next", "")})


class LoginView(auth_views.LoginView):
    """Django's LoginView (safe `next`, CSRF, never cached) with the throttled service in place of
    AuthenticationForm's password check. login() rotates the session key (no session fixation) and
    sends `user_logged_in`, the hook other apps (the cart) can listen to."""

    form_class = LoginForm
    template_name = "accounts/login.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return _already_logged_in(request)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        # Skip LoginView's `request` kwarg: LoginForm only validates fields.
        return FormView.get_form_kwargs(self)

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        try:
            user = services.authenticate_for_login(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                client_address=client_address(self.request),
            )
        except LoginThrottled as exc:
            form.add_error(None, exc.message)
            return _throttled(self.render_to_response(self.get_context_data(form=form)), exc)
        except InvalidCredentials as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        auth_login(self.request, user)
        return HttpResponseRedirect(self.get_success_url())


class LogoutView(auth_views.LogoutView):
    """POST only (Django's LogoutView answers GET with 405), so a link or image cannot log you out."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out.")
        return response


@method_decorator(never_cache, name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view: checks the old password, applies the validators, keeps this session alive
    (update_session_auth_hash) and ends the user's other sessions. Wrong current passwords are throttled
    like log-ins (someone at an unlocked screen must not guess it); while blocked, the form is not even
    checked, so it tells nothing about the guess."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")
    form_class = PasswordChangeForm  # the new password must not be the current one

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            services.check_password_change_allowed(user=request.user)
        except LoginThrottled as exc:
            form = self.get_form_class()(user=request.user)  # unbound: the guess is never looked at
            form.cleaned_data = {}  # what add_error() expects of a form that has been cleaned
            form.add_error(None, exc.message)
            return _throttled(self.render_to_response(self.get_context_data(form=form)), exc)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        if form.has_error("old_password", "password_incorrect"):
            services.record_wrong_current_password(user=self.request.user)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        services.record_password_changed(user=self.request.user)
        return super().form_valid(form)


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


def _reset_link_minutes() -> int:
    return settings.PASSWORD_RESET_TIMEOUT // 60


@method_decorator(never_cache, name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    """Django's view and tokens: a link valid PASSWORD_RESET_TIMEOUT seconds, for one use (the token
    hashes the password and the last log-in). Throttled per email and per client address; the same
    page follows whether or not the address has an account."""

    form_class = PasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    @property
    def extra_email_context(self) -> dict[str, Any]:  # type: ignore[override]
        return {"timeout_minutes": _reset_link_minutes()}

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:  # type: ignore[override]
        try:
            services.allow_password_reset(email=form.cleaned_data["email"], client_address=client_address(self.request))
        except PasswordResetThrottled as exc:
            form.add_error(None, exc.message)
            return _throttled(self.render_to_response(self.get_context_data(form=form)), exc)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"
    extra_context = {"timeout_minutes": _reset_link_minutes}


@method_decorator(never_cache, name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Checks the link's token, then takes the new password (Django's validators). Changing it ends the
    user's sessions and API tokens everywhere (both carry a fingerprint of the password hash)."""

    form_class = SetPasswordForm
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


# --- the account page: name, email, password (a page of its own above), deletion --------------------------


def _account_page(
    request: HttpRequest, *, name_form: NameForm | None = None, email_form: EmailChangeForm | None = None
) -> HttpResponse:
    user = request.user
    context = {
        "name_form": name_form or NameForm(initial={"name": user.name}),
        "email_form": email_form or EmailChangeForm(),
        "pending_email": selectors.pending_email_change(user=user),  # type: ignore[arg-type]
    }
    return render(request, "accounts/account.html", context)


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The account page; its POST saves the name."""
    if request.method != "POST":
        return _account_page(request)
    form = NameForm(request.POST)
    if form.is_valid():
        try:
            services.update_name(user=request.user, name=form.cleaned_data["name"])  # type: ignore[arg-type]
        except DomainError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Your name is saved.")
            return redirect("accounts:account")
    return _account_page(request, name_form=form)


@login_required
@never_cache
@require_POST
@sensitive_post_parameters("current_password")
def email_change(request: HttpRequest) -> HttpResponse:
    """Mails a confirmation link to the new address; the address changes only when it is followed."""
    form = EmailChangeForm(request.POST)
    if form.is_valid():
        try:
            email = services.request_email_change(
                user=request.user,  # type: ignore[arg-type]
                email=form.cleaned_data["email"],
                current_password=form.cleaned_data["current_password"],
                site_url=request.build_absolute_uri("/"),
            )
        except Throttled as exc:  # wrong current passwords, or too many mails
            form.add_error(None, exc.message)
            return _throttled(_account_page(request, email_form=form), exc)
        except DomainError as exc:
            _add_errors(form, exc)
        else:
            messages.info(request, f"We sent a link to {email}. Your email address changes when you open it.")
            return redirect("accounts:account")
    return _account_page(request, email_form=form)


@login_required
@require_POST
def email_change_cancel(request: HttpRequest) -> HttpResponse:
    services.cancel_email_change(user=request.user)  # type: ignore[arg-type]
    messages.info(request, "The email change was cancelled: its link no longer works.")
    return redirect("accounts:account")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the mail: a page with a button (mail scanners open links; only a person's POST
    changes the address). Works whether or not the browser is logged in."""
    template = "accounts/email_change_confirm.html"
    if request.method != "POST":
        found = selectors.email_change_for_link(token=token)
        if found is None:
            return render(request, template, {"error": services.INVALID_LINK_MESSAGE})
        return render(request, template, {"new_email": found[1]})
    try:
        user = services.confirm_email_change(token=token)
    except EmailChangeLinkInvalid as exc:
        return render(request, template, {"error": exc.message}, status=400)
    except EmailTaken as exc:
        return render(request, template, {"error": exc.message}, status=409)
    return render(request, "accounts/email_change_done.html", {"email": user.email})


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_post_parameters("current_password")
def account_delete(request: HttpRequest) -> HttpResponse:
    """Asks for the password, then deletes the account and its cart, and logs out."""
    form = DeleteAccountForm(request.POST or None)
    template = "accounts/account_delete.html"
    if request.method == "POST" and form.is_valid():
        try:
            services.delete_account(user=request.user, current_password=form.cleaned_data["current_password"])  # type: ignore[arg-type]
        except LoginThrottled as exc:
            form.add_error(None, exc.message)
            return _throttled(render(request, template, {"form": form}), exc)
        except DomainError as exc:
            _add_errors(form, exc)
        else:
            auth_logout(request)
            messages.info(request, "Your account and your cart are deleted. Thank you for shopping with us.")
            return redirect("/")
    return render(request, template, {"form": form})
