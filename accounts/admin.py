"""Django admin for users, adapted to email log-in, and throttled admin log-in."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.errors import InvalidCredentials, LoginThrottled
from accounts.forms import AdminUserAddForm, AdminUserChangeForm
from accounts.http import client_address
from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = AdminUserChangeForm
    add_form = AdminUserAddForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("name",)}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "usable_password", "password1", "password2")}),
    )
    list_display = ("email", "name", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's log-in goes through the same throttle as the shop's pages and API; otherwise
    /admin/login/ would be an unthrottled way to guess passwords (staff ones above all)."""

    def clean(self) -> dict:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            try:
                self.user_cache = services.authenticate_for_login(
                    email=email, password=password, client_address=client_address(self.request)
                )
            except LoginThrottled as exc:
                raise ValidationError(exc.message, code="throttled") from exc
            except InvalidCredentials as exc:
                raise self.get_invalid_login_error() from exc
            self.confirm_login_allowed(self.user_cache)  # staff only
        return self.cleaned_data


admin.site.login_form = ThrottledAdminAuthenticationForm
