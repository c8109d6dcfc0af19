"""URLs of the staff product pages, mounted under /admin/catalog/products/ before the admin site."""

from django.contrib import admin
from django.urls import path

from catalog import admin_views

app_name = "catalog_admin"

urlpatterns = [
    path("", admin.site.admin_view(admin_views.product_list), name="product_list"),
    path("add/", admin.site.admin_view(admin_views.product_add), name="product_add"),
    path("<str:product_id>/change/", admin.site.admin_view(admin_views.product_change), name="product_change"),
    path("<str:product_id>/active/", admin.site.admin_view(admin_views.product_set_active), name="product_set_active"),
    path(
        "<str:product_id>/deactivate/",
        admin.site.admin_view(admin_views.product_deactivate_confirm),
        name="product_deactivate_confirm",
    ),
]
