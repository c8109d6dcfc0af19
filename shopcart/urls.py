from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from shopcart import views
from shopcart.api import api

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # nginx's page for a body past its client_max_body_size (devstack/nginx, deploy/nginx).
    path("errors/request-too-large", views.request_too_large, name="request_too_large"),
    # Staff pages for Elasticsearch products, inside the admin site (before it, so its catch-all does not win).
    path("admin/catalog/products/", include("catalog.admin_urls")),
    # The name the admin's log-in page looks for to offer "Forgotten your password?": the shop's reset page.
    path(
        "admin/password_reset/",
        RedirectView.as_view(pattern_name="accounts:password_reset"),
        name="admin_password_reset",
    ),
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
