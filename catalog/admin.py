"""The products in the Django admin's index and sidebar. The staff pages themselves are
catalog/admin_views.py (products are Elasticsearch documents, not rows); this ModelAdmin only sends
the admin's own product addresses (its index links, "Recent actions" links) there."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path

from catalog.models import Product


def _staff(request: HttpRequest) -> bool:
    # As every staff product page (admin.site.admin_view): any active staff member.
    return bool(request.user.is_active and request.user.is_staff)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _staff(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # products are deactivated, never deleted

    def get_urls(self) -> list[URLPattern]:
        def to_list(request: HttpRequest) -> HttpResponse:
            return redirect("catalog_admin:product_list")

        def to_add(request: HttpRequest) -> HttpResponse:
            return redirect("catalog_admin:product_add")

        def to_change(request: HttpRequest, object_id: str) -> HttpResponse:
            return redirect("catalog_admin:product_change", product_id=object_id)

        wrap = self.admin_site.admin_view
        return [
            path("", wrap(to_list), name="catalog_product_changelist"),
            path("add/", wrap(to_add), name="catalog_product_add"),
            path("<str:object_id>/change/", wrap(to_change), name="catalog_product_change"),
        ]
