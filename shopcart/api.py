"""The JSON API (django-ninja, docs/adr/0002): one NinjaAPI that mounts each app's router. Errors get
their status codes and their one JSON shape in shopcart/http_errors.py; the Bearer auth is accounts'."""

from __future__ import annotations

from csp.decorators import csp_update
from ninja import NinjaAPI

from accounts.api import router as accounts_router
from accounts.auth import bearer_auth
from cart.api import router as cart_router
from catalog.api import router as catalog_router
from shopcart.http_errors import install_api_error_handlers
from shopcart.request_bodies import RequestBodyParser

api = NinjaAPI(
    title="shopcart API",
    version="1.0",
    description=(
        'Accounts, catalog and cart. Errors are `{"error": {"code", "message", "fields"?}}`, a wrong method '
        "included (405 with `Allow`); every GET route answers HEAD. POST /register, /login and /user/cart also "
        "take form bodies (URL-encoded or multipart). Under `/api/v0/` the same routes answer in the original "
        'system\'s envelope `{"success", "message", "payload"}`, so a client written for it only changes its base '
        'URL. Money is a decimal string ("12.50"). The schema itself: [/api/openapi.json](/api/openapi.json); '
        "the shop: [its pages](/)."
    ),
    docs_url="/docs",
    # Swagger UI draws its icons as data: SVG images; otherwise the site's policy holds (no inline script).
    docs_decorator=csp_update({"img-src": ["data:"]}),
    urls_namespace="api",
    parser=RequestBodyParser(),
)
install_api_error_handlers(api)

api.add_router("", accounts_router)
api.add_router("", catalog_router)
# The cart is always the token's user's cart: every cart route needs the Bearer token.
api.add_router("", cart_router, auth=bearer_auth)
