"""Calling an ASGI app in this process as a peer calls it over HTTP: the same request (method,
path, headers, JSON body) through the app's whole stack — middleware, routing, validation —
answered with the status and body the app sent. No socket and no HTTP client in between,
which cost more than the request itself: the embedded sandbox bank and the platform talk
this way."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from starlette.types import ASGIApp, Message

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Answer:
    """The app's answer: what an HTTP client's response offers of it."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (`ValueError` when it is not)."""
        return jsonlib.loads(self.content)


class AppClient:
    """POSTs JSON to `app` in this process (`post(url, json=…)`, as `httpx.AsyncClient`)."""

    def __init__(self, app: ASGIApp, *, host: str = "mornet.internal") -> None:
        self.app = app
        self.host = host

    async def post(self, url: str, *, json: Any) -> Answer:
        body = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        target = urlsplit(url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": target.path,
            "raw_path": target.path.encode(),
            "query_string": target.query.encode(),
            "root_path": "",
            "headers": [
                (b"host", self.host.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 0),
            "server": (self.host, 80),
        }
        sent = False
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:  # the body was read: what follows is the peer hanging up
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:
            # As over a network: the caller sees the 500 the app's error handler sent (or
            # would have), not the exception.
            log.exception("inprocess.app_failed", path=target.path)
            if not chunks:
                return Answer(500, b"Internal Server Error")
        return Answer(status, b"".join(chunks))

    async def aclose(self) -> None:
        """Nothing to close (as `httpx.AsyncClient.aclose`)."""
