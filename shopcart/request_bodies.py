"""How the API reads request bodies: JSON on every route, and form-encoded bodies on POST as the
original's clients sent them (docs/original-api.md). Text that cannot be stored (a NUL character, which
PostgreSQL refuses in text, or an unpaired UTF-16 surrogate such as the JSON escape "\\ud800") is refused
here, naming the field, for every route at once.
No app imports: the apps' schemas import this module."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest
from ninja.parser import Parser
from pydantic import ValidationInfo

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,30}")
INVALID_TEXT_MESSAGE = (
    "Contains characters that are not valid text (a NUL character, an unpaired surrogate, or bytes not UTF-8)."
)


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
            raise UnsupportedMediaType(content_type or "none")
        if fields := fields_with_unstorable_text(data):
            raise UnstorableText(fields)
        return data


def form_whole_number(value: Any, info: ValidationInfo) -> Any:
    """A form field is text: "3" in a form body is the number 3 (a JSON body must send 3 itself).
    For a pydantic BeforeValidator on an integer field; django-ninja puts the request in the context."""
    request = (info.context or {}).get("request")
    if isinstance(value, str) and request is not None and is_form_body(request) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return value
