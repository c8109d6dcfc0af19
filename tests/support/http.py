"""HTTP over loopback, stdlib only, for the tests that talk to real servers (nginx in front of gunicorn
replicas, or of containers): one request per connection, cookies kept as a browser without JavaScript
keeps them, the CSRF token or all the fields of a rendered form."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

CSRF_INPUT = 'name="csrfmiddlewaretoken" value="'


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes

    @property
    def served_by(self) -> str:
        return self.headers.get("x-served-by", "")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def call(
    method: str,
    path: str,
    *,
    port: int,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str | None = None,
    timeout: float = 15.0,
) -> Reply:
    """One request to 127.0.0.1:`port` on a fresh connection. `source_ip` (any 127.x.y.z) makes the
    server see another client."""
    source = (source_ip, 0) if source_ip else None
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=source)
    sent = dict(headers or {})
    body: bytes | None = None
    if json_body is not None:
        body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
    if form is not None:
        body, sent["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if cookies:
        sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        jar: dict[str, str] = {}
        for raw in response.headers.get_all("Set-Cookie") or []:
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(raw)
            jar.update({name: morsel.value for name, morsel in parsed.items()})
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, jar, data)
    finally:
        connection.close()


@dataclass
class Browser:
    """Cookies kept between requests to one port, as a browser without JavaScript keeps them."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def go(self, method: str, path: str, **kwargs: Any) -> Reply:
        reply = call(method, path, port=self.port, cookies=self.cookies, **kwargs)
        for name, value in reply.cookies.items():
            if value:
                self.cookies[name] = value
            else:  # Django deletes a cookie by sending it empty
                self.cookies.pop(name, None)
        return reply


def form_token(reply: Reply) -> str:
    assert reply.status == 200, reply.status
    start = reply.text.index(CSRF_INPUT) + len(CSRF_INPUT)
    return reply.text[start : reply.text.index('"', start)]


class _FormFields(HTMLParser):
    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.fields = action, False, dict[str, str]()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and not self.fields:
            self.inside = attributes.get("action") == self.action
        elif tag == "input" and self.inside and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def hidden_fields(reply: Reply, action: str) -> dict[str, str]:
    """The named inputs of the page's first form posting to `action`, with their values, as a browser
    would submit them (CSRF token, idempotency key and all)."""
    assert reply.status == 200, reply.status
    parser = _FormFields(action)
    parser.feed(reply.text)
    assert parser.fields, f"no form posting to {action}"
    return parser.fields
