"""Account pages: thin views that parse a form, call a service and render. Django's auth views do
log-out and password change; sign-up and log-in call accounts.services (throttling, validation)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic.edit import FormView

from accounts import services
from accounts.errors import InvalidCredentials, LoginThrottled, PasswordResetThrottled
from accounts.forms import LoginForm, PasswordResetForm, SignupForm
from accounts.http import client_address
from shopcart.errors import DomainError

# Service field names that differ from the form's.
_SIGNUP_FIELDS = {"name": "name", "email": "email", "password": "password1"}


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


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
            for field, field_messages in (exc.fields or {None: [exc.message]}).items():
                for message in field_messages:
                    form.add_error(_SIGNUP_FIELDS.get(field or ""), message)
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
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
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

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            services.check_password_change_allowed(user=request.user)
        except LoginThrottled as exc:
            form = self.get_form_class()(user=request.user)  # unbound: the guess is never looked at
            form.cleaned_data = {}  # what add_error() expects of a form that has been cleaned
            form.add_error(None, exc.message)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
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
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"
    extra_context = {"timeout_minutes": _reset_link_minutes}


@method_decorator(never_cache, name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Checks the link's token, then takes the new password (Django's validators). Changing it ends the
    user's sessions and API tokens everywhere (both carry a fingerprint of the password hash)."""

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
