"""The JSON API (django-ninja, docs/adr/0002): one NinjaAPI that mounts each app's router, turns
domain errors into status codes in one place, and gives every error the same JSON shape."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from shopcart.errors import DomainError, domain_error_response, error_response, unavailable_dependency
from shopcart.request_bodies import (
    INVALID_TEXT_MESSAGE,
    RequestBodyParser,
    UnpairedSurrogates,
    UnsupportedMediaType,
)


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <auth_token>` from POST /api/login; valid on every replica (signed with
    the shared SECRET_KEY) until it expires or is revoked (revocations live in Redis)."""

    def authenticate(self, request: HttpRequest, token: str) -> object | None:
        from accounts.selectors import user_for_token

        return user_for_token(token=token)


bearer_auth = BearerTokenAuth()


api = NinjaAPI(
    title="shopcart API",
    version="1.0",
    description=(
        'Accounts, catalog and cart. Errors are `{"error": {"code", "message", "fields"?}}`, a wrong method '
        "included (405 with `Allow`); every GET route answers HEAD. POST /register, /login and /user/cart also "
        "take form bodies (URL-encoded or multipart). Under `/api/v0/` the same routes answer in the original "
        'system\'s envelope `{"success", "message", "payload"}` (docs/original-api.md).'
    ),
    docs_url="/docs",
    urls_namespace="api",
    parser=RequestBodyParser(),
)


def _field_errors(errors: list[dict]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        # loc looks like ("body", "payload", "quantity"); the last part names the field.
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        name = ".".join(location) or "__all__"
        fields.setdefault(name, []).append(str(error.get("msg", "Invalid value.")))
    return fields


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(
        status=400, code="invalid", message="Some fields are invalid.", fields=_field_errors(exc.errors)
    )


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return domain_error_response(exc)


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(
        status=401, code="not_authenticated", message="A valid 'Authorization: Bearer <token>' header is required."
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(status=404, code="not_found", message=str(exc) or "Not found.")


# Codes for the HTTP errors django-ninja raises itself (say 400 "Cannot parse request body" for bad JSON).
_HTTP_ERROR_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found"}


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, UnsupportedMediaType):  # ninja wraps any parser error in a 400
        return error_response(
            status=415,
            code="unsupported_media_type",
            message=f"Send the body as JSON with 'Content-Type: application/json' (not {exc.__cause__}); "
            "a POST may also send a form (application/x-www-form-urlencoded or multipart/form-data).",
        )
    if isinstance(exc.__cause__, UnpairedSurrogates):
        return error_response(
            status=400,
            code="invalid",
            message="Some fields are invalid.",
            fields={name: [INVALID_TEXT_MESSAGE] for name in exc.__cause__.fields},
        )
    return error_response(
        status=exc.status_code, code=_HTTP_ERROR_CODES.get(exc.status_code, "error"), message=str(exc)
    )


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    dependency = unavailable_dependency(exc)
    if dependency is None:
        raise exc  # Django's handler500 logs it and answers with a plain 500 in the same JSON shape.
    response = error_response(
        status=503,
        code="service_unavailable",
        message=f"A service the shop needs ({dependency}) is not responding. Nothing was changed; retry shortly.",
    )
    response["Retry-After"] = "5"
    return response


# Imported last: the routers' modules may use the error helpers above.
from accounts.api import router as accounts_router  # noqa: E402
from cart.api import router as cart_router  # noqa: E402
from catalog.api import router as catalog_router  # noqa: E402

api.add_router("", accounts_router)
api.add_router("", catalog_router)
api.add_router("", cart_router)
