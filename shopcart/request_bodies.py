"""How the API reads request bodies: JSON on every route, and form-encoded bodies on POST as the
original's clients sent them (docs/original-api.md). Text that cannot be stored (a NUL character, which
PostgreSQL refuses in text, or an unpaired UTF-16 surrogate such as the JSON escape "\\ud800") is refused
here, naming the field, for every route at once.
No app imports: the apps' schemas import this module."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest
from ninja.parser import Parser
from pydantic import ValidationInfo

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,30}")
INVALID_TEXT_MESSAGE = (
    "Contains characters that are not valid text (a NUL character, an unpaired surrogate, or bytes not UTF-8)."
)

View = TypeVar("View", bound=Callable[..., Any])


def takes_long_text(view: View) -> View:
    """Marks a page whose form takes long texts: its body may be up to LONG_FORM_BODY_LIMIT instead of
    REQUEST_BODY_LIMIT (shopcart.middleware.RequestBodyMiddleware), so that a text past its field's limit
    comes back in the form with a field error, not as a 413 that loses what was typed. (Decorators such as
    the admin's admin_view copy the mark onto their wrapper.)"""
    view.takes_long_text = True  # type: ignore[attr-defined]
    return view


def body_limit(view: Callable[..., Any]) -> int:
    """The largest body `view` reads, in bytes."""
    return settings.LONG_FORM_BODY_LIMIT if getattr(view, "takes_long_text", False) else settings.REQUEST_BODY_LIMIT


class UnsupportedMediaType(Exception):
    """A request body that is neither JSON nor, on POST, a form."""


class UnstorableText(Exception):
    """Strings with a NUL character or an unpaired surrogate, by field name: they could not be stored or hashed."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


def undecodable_form_fields(body: bytes) -> list[str]:
    """The fields of a URL-encoded form whose name or value is not UTF-8 (an encoded surrogate such as
    %ED%A0%80 included). Django would decode them with U+FFFD in place of the bad bytes, and store that."""
    names = []
    for pair in body.split(b"&"):
        raw_name, _, raw_value = (unquote_to_bytes(part.replace(b"+", b" ")) for part in pair.partition(b"="))
        try:
            raw_name.decode()
            raw_value.decode()
        except UnicodeDecodeError:
            names.append(raw_name.decode(errors="replace") or "__all__")
    return names


def is_form_body(request: HttpRequest) -> bool:
    # Django parses request.POST for POST only, so PATCH and DELETE stay JSON-only.
    return request.method == "POST" and (request.content_type or "").lower() in FORM_CONTENT_TYPES


def fields_with_unstorable_text(data: Any, path: str = "") -> list[str]:
    if isinstance(data, str):
        return [path or "__all__"] if _UNSTORABLE.search(data) else []
    if isinstance(data, dict):
        found = []
        for key, value in data.items():
            name = f"{path}.{key}" if path else str(key)
            found += [name] if _UNSTORABLE.search(str(key)) else fields_with_unstorable_text(value, name)
        return found
    if isinstance(data, list):
        return [
            name for index, item in enumerate(data) for name in fields_with_unstorable_text(item, f"{path}.{index}")
        ]
    return []


class RequestBodyParser(Parser):
    """JSON, declared so (django-ninja would parse a `text/plain` body as JSON anyway and refuse a form
    with a vague 400), or a form on POST. Only called for an operation that takes a body."""

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = (request.content_type or "").lower()
        if is_form_body(request):
            data: Any = {key: request.POST[key] for key in request.POST}  # the last value of a repeated field
        elif content_type == "application/json" or content_type.endswith("+json"):
            data = super().parse_body(request)
        else:
            raise UnsupportedMediaType(content_type)
        if fields := fields_with_unstorable_text(data):
            raise UnstorableText(fields)
        return data


def whole_number(text: str) -> int | None:
    """A form field's text as a whole number: digits only ("3", " 3 "), so "3.0", "1.5", "+3", "1e3" and
    other scripts' digits are not one (None). The pages' forms and the API's form bodies read numbers so."""
    text = text.strip()
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def form_whole_number(value: Any, info: ValidationInfo) -> Any:
    """A form field is text: "3" in a form body is the number 3 (a JSON body must send 3 itself).
    For a pydantic BeforeValidator on an integer field; django-ninja puts the request in the context."""
    request = (info.context or {}).get("request")
    if isinstance(value, str) and request is not None and is_form_body(request):
        number = whole_number(value)
        return value if number is None else number
    return value
