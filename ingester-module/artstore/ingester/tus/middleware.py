"""What tus asks of every exchange under its URLs, whichever handler answers (errors,
404s and 405s included): ``Tus-Resumable`` on every response, and
``X-HTTP-Method-Override`` for clients whose environment sends only GET and POST."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artstore.ingester.tus.protocol import VERSION

PREFIX = "/api/v1/uploads"
# Only what a tus client needs; a POST cannot turn into anything else (GET, PUT...).
OVERRIDABLE = frozenset({"PATCH", "DELETE", "HEAD"})


def _tus_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class TusMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _tus_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            override = _override(scope)
            if override is not None:
                scope = {**scope, "method": override}

        async def send_tus(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "tus-resumable" not in headers:
                    headers["Tus-Resumable"] = VERSION
            await send(message)

        await self.app(scope, receive, send_tus)


def _override(scope: Scope) -> str | None:
    """The method asked for by ``X-HTTP-Method-Override``; any other value is ignored
    (the request stays a POST, which a tus upload URL answers with 405)."""
    for name, value in scope["headers"]:
        if name == b"x-http-method-override":
            method = value.decode("latin-1").strip().upper()
            return method if method in OVERRIDABLE else None
    return None
