"""The local stack's mail catcher: an SMTP sink (aiosmtpd) that delivers nothing. Each message it
receives is written to DIR/<time>-<n>.eml and is listed on a small web page, with a JSON view for
the tests.

    python devstack/mailcatcher.py --dir .devstack/mail --smtp-port 1025 --http-port 8025

    GET /?to=A               the messages (to addresses containing A, if given), newest first (HTML)
    GET /messages/<name>     one message as received (text/plain)
    GET /api/messages?to=A   the messages (JSON: id, from, to, subject, date, text), newest first
    GET /healthz             "ok"
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import itertools
import json
import os
import signal
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller


class Sink:
    """aiosmtpd handler: every accepted message becomes one .eml file (written whole, then renamed,
    so a reader never sees half a message)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        recipients = ", ".join(envelope.rcpt_tos)
        content = envelope.original_content or envelope.content
        raw = f"X-Envelope-To: {recipients}\r\n".encode() + content
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(raw)
        temporary.rename(self.directory / name)
        return "250 Message accepted for delivery"


def read_messages(directory: Path) -> list[dict[str, str]]:
    messages = []
    for path in sorted(directory.glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        messages.append(
            {
                "id": path.name,
                "from": str(message.get("From", "")),
                "to": str(message.get("X-Envelope-To") or message.get("To", "")),
                "subject": str(message.get("Subject", "")),
                "date": str(message.get("Date", "")),
                "text": body.get_content() if body is not None else "",
            }
        )
    return messages


def make_handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            wanted = parse_qs(url.query).get("to", [""])[0].lower()
            if url.path == "/healthz":
                self._send(HTTPStatus.OK, "ok\n", "text/plain; charset=utf-8")
            elif url.path == "/api/messages":
                found = [m for m in read_messages(directory) if wanted in m["to"].lower()]
                self._send(HTTPStatus.OK, json.dumps(found), "application/json")
            elif url.path.startswith("/messages/"):
                path = directory / Path(url.path).name  # .name: never outside the folder
                if path.suffix == ".eml" and path.is_file():
                    self._send(HTTPStatus.OK, path.read_text(errors="replace"), "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, "no such message\n", "text/plain; charset=utf-8")
            elif url.path == "/":
                rows = "".join(
                    f"<tr><td>{html.escape(m['date'])}</td><td>{html.escape(m['to'])}</td>"
                    f'<td><a href="/messages/{html.escape(m["id"])}">{html.escape(m["subject"]) or "(no subject)"}</a>'
                    f"</td></tr><tr><td colspan=3><pre>{html.escape(m['text'])}</pre></td></tr>"
                    for m in read_messages(directory)
                    if wanted in m["to"].lower()
                )
                page = (
                    "<!doctype html><meta charset=utf-8><title>Mail catcher</title>"
                    "<style>body{font-family:sans-serif;margin:2rem;max-width:60rem}td,th{text-align:left;"
                    "padding:.25rem .75rem .25rem 0}pre{background:#f4f4f5;padding:1rem;white-space:pre-wrap}</style>"
                    f"<h1>Caught mail</h1><p>Files in {html.escape(str(directory))}</p>"
                    f"<table><tr><th>Date</th><th>To</th><th>Subject</th></tr>{rows}</table>"
                )
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            else:
                self._send(HTTPStatus.NOT_FOUND, "not found\n", "text/plain; charset=utf-8")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the SMTP side logs what matters

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--pidfile", type=Path)
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(args.dir), hostname=args.host, port=args.smtp_port)
    controller.start()
    web = ThreadingHTTPServer((args.host, args.http_port), make_handler(args.dir))
    if args.pidfile:
        args.pidfile.write_text(f"{os.getpid()}\n")
    # SIGTERM (stack.sh down) ends serve_forever from another thread, then SMTP stops cleanly.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=web.shutdown).start())
    print(f"mail catcher: SMTP on {args.host}:{args.smtp_port}, web on http://{args.host}:{args.http_port}/")
    try:
        web.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        if args.pidfile:
            args.pidfile.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
