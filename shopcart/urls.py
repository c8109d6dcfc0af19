from django.contrib import admin
from django.urls import include, path

from shopcart import views
from shopcart.api import api

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # Staff pages for Elasticsearch products, inside the admin site (before it, so its catch-all does not win).
    path("admin/catalog/products/", include("catalog.admin_urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/", include("accounts.urls")),
    path("cart/", include("cart.urls")),
    path("", include("catalog.urls")),
]

handler400 = "shopcart.views.bad_request"
handler403 = "shopcart.views.permission_denied"
handler404 = "shopcart.views.page_not_found"
handler500 = "shopcart.views.server_error"
