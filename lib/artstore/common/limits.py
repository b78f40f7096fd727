"""Bounded requests: how many bytes a request body, a form and a request head may take.

Two layers, both before any route runs:

- :class:`BodyLimitMiddleware` (ASGI) answers 413 ``BODY_TOO_LARGE`` (the error envelope)
  to a request body over the service's ``*_MAX_BODY_BYTES`` (default 1 MiB): at once
  when ``Content-Length`` says so (nothing of it is read), else as soon as the bytes
  read pass the limit; and to an urlencoded form of more than :data:`MAX_FORM_FIELDS`
  fields. A body within the limit is read here (it is small by definition) and handed
  to the route as it came. The streaming upload routes a service names (SE ``POST
  /api/v1/files``, ingester uploads, tus ``PATCH``) are not limited here: they stream
  gigabytes by design and enforce their own ``*_MAX_FILE_SIZE``.
- :func:`server_options` gives uvicorn a parser protocol that answers 431
  ``HEADERS_TOO_LARGE`` when a request line plus headers pass :data:`MAX_HEAD_BYTES`
  before they are complete (uvicorn's httptools parser has no such limit of its own;
  its h11 parser has one, used when httptools is missing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artstore.common.errors import ArtStoreError, error_body

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# No form we read has more than a handful of fields (the token endpoint: 7).
MAX_FORM_FIELDS = 64
# Request line plus headers. A bearer token is ~1-2 KiB; 64 KiB leaves room for any
# real client and refuses the 1 MB header of issue 13.
MAX_HEAD_BYTES = 64 * 1024

_FORM = "application/x-www-form-urlencoded"


class BodyTooLarge(ArtStoreError):
    status, code = 413, "BODY_TOO_LARGE"


def max_body_bytes_field() -> Any:
    """The ``max_body_bytes`` setting every service declares (with its own prefix)."""
    return Field(
        DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="Largest JSON or form request body, bytes (413 above); streaming "
        "upload routes have their own limit",
    )


def _template_regex(path: str) -> re.Pattern[str]:
    """``/api/v1/uploads/{a}/{b}`` as a regex matching one path segment per parameter."""
    parts = re.split(r"(\{[^}]+\})", path)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{body}$")


class BodyLimitMiddleware:
    """See the module docstring. ``streaming`` lists ``(method, path template)`` pairs
    whose bodies are left to the route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        streaming: Iterable[tuple[str, str]] = (),
        max_form_fields: int = MAX_FORM_FIELDS,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_form_fields = max_form_fields
        self.streaming = [(m.upper(), _template_regex(p)) for m, p in streaming]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is None and not chunked:
            await self.app(scope, receive, send)  # no body at all
            return
        if length is not None and (not length.isdigit() or len(length) > 18):
            # uvicorn refuses a malformed Content-Length itself; a digit string too
            # long for any real body is simply too large.
            await self._refuse(send, "the request body is too large")
            return
        if length is not None and int(length) > self.max_bytes:
            await self._refuse(send, f"the request body is larger than {self.max_bytes} bytes")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the route see it as it would have.
                await self.app(scope, _replay(None, message, receive), send)
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(send, f"the request body is larger than {self.max_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        if ctype.startswith(_FORM) and body.count(b"&") + 1 > self.max_form_fields:
            await self._refuse(send, f"a form may have at most {self.max_form_fields} fields")
            return
        whole: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay(whole, None, receive), send)

    def _exempt(self, scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        return any(m == method and rx.match(path) for m, rx in self.streaming)

    async def _refuse(self, send: Send, message: str) -> None:
        err = BodyTooLarge(message, details={"max_bytes": self.max_bytes})
        payload = json.dumps(error_body(err.code, err.message, err.details)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": err.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    # The rest of the body is never read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _replay(first: Message | None, then: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands out the messages already read, then the real one (a
    streaming answer keeps listening on it for ``http.disconnect``)."""
    pending = [m for m in (first, then) if m is not None]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


# -- the request head: uvicorn options ------------------------------------------------------
def server_options(max_head_bytes: int = MAX_HEAD_BYTES) -> dict[str, Any]:
    """``uvicorn.run`` keyword arguments that bound the request head."""
    try:
        protocol = _bounded_httptools(max_head_bytes)
    except ImportError:  # httptools is optional for uvicorn: its h11 parser has a limit
        return {"http": "h11", "h11_max_incomplete_event_size": max_head_bytes}
    return {"http": protocol}


def _bounded_httptools(max_head_bytes: int) -> type[Any]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    body = json.dumps(
        error_body(
            "HEADERS_TOO_LARGE",
            f"the request line and headers are larger than {max_head_bytes} bytes",
        )
    ).encode()
    answer = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )

    class BoundedHeadHttpTools(HttpToolsProtocol):
        """httptools collects a header of any size before calling back; this counts
        the bytes received while a request head is incomplete and answers 431 once
        they pass the limit (the parser state is dropped with the connection)."""

        _in_head = True
        _head_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            over = self._in_head and self._head_bytes > max_head_bytes
            if over and not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

    return BoundedHeadHttpTools
