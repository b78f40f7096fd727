"""A lean HTTP/1.1 client for download bodies from storage elements (issue 7).

httpx moves a body through five layers per 64 KiB (httpx, httpcore, h11, anyio, the
event loop), which cost the query module more CPU per relayed MiB than the SE spends
reading and hashing it. Downloads only need a GET/HEAD with a few headers and a
Content-Length body, so this client speaks exactly that: an ``asyncio.Protocol`` with
the C parser uvicorn uses (httptools/llhttp), the body handed on in the pieces the event
loop read (up to 256 KiB with uvloop, no re-buffering), keep-alive connections pooled
per SE. Flow control: the socket stops being read while ``HIGH_WATER`` bytes wait for
the caller. Every failure is an :class:`UpstreamError` (an ``OSError``): before the
status line it means "try the next copy"; after it the caller cuts its answer short.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import httptools

from artstore.common.logs import request_id_var

HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
IDLE_SECONDS = 3.0  # below uvicorn's 5 s keep-alive, so the SE never closes one under us
MAX_IDLE_PER_SE = 64


class UpstreamError(OSError):
    """The SE could not be reached, timed out, or broke the answer."""


class UpstreamTimeout(UpstreamError):
    """No answer (or no next piece of it) within the read timeout."""


class _Conn(asyncio.Protocol):
    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reset()
        self.lost = False
        self.idle_since = 0.0

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = False
        self.keep_alive = False
        self.head_request = False
        self.body_left: int | None = None  # Content-Length still to come, once known
        self.bypass = False  # the body arrives straight from data_received
        self.complete = False
        self.error: BaseException | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.bypass:
            # Past the head of a Content-Length answer: the bytes as the loop read them,
            # no parser, no copy.
            assert self.body_left is not None
            if len(data) > self.body_left:
                self._fail(UpstreamError("storage element sent more than Content-Length"))
                self.abort()
                return
            self.body_left -= len(data)
            if self.body_left == 0:
                self.complete = True
            self.on_body(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad answer from the storage element: {exc}"))
            self.close()
            return
        if self.body_left is not None and not self.complete:
            self.bypass = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.complete:
            self._fail(UpstreamError(f"storage element closed the connection ({exc})"))

    # -- httptools callbacks -----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # only meaningful here
        self.head = True
        if not self.head_request and self.status >= 200 and self.status not in (204, 304):
            length = te = None
            for k, v in self.headers:
                name = k.lower()
                if name == b"content-length":
                    length = v
                elif name == b"transfer-encoding":
                    te = v
            if length is not None and te is None and length.isdigit():
                self.body_left = int(length)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if not self.bypass and self.body_left is not None:
            self.body_left -= len(body)
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered >= HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- helpers -------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, limit: float) -> None:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        handle = loop.call_later(limit, self._timed_out, self.waiter)
        try:
            await self.waiter
        finally:
            handle.cancel()
            self.waiter = None

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._fail(UpstreamTimeout("storage element timed out"))
            self.close()

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()


class UpstreamResponse:
    """The SE's status line and headers; the body through :meth:`next_chunk`."""

    def __init__(self, client: UpstreamClient, conn: _Conn, method: str) -> None:
        self._client = client
        self._conn: _Conn | None = conn
        self.status_code = conn.status
        self.raw_headers = conn.headers
        self._head = method == "HEAD"

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.raw_headers:
            if k.lower() == name:
                return v
        return None

    async def next_chunk(self) -> tuple[bytes, bool]:
        """``(data, last)``: the next piece of the body and whether it ends it. The
        connection goes back to the pool after the last piece."""
        conn = self._conn
        if conn is None:
            return b"", True
        while not conn.chunks:
            if conn.error is not None:
                self.close()
                raise conn.error
            if conn.complete:
                self.release()
                return b"", True
            await conn.wait(self._client.timeout)
        data = conn.chunks.popleft()
        conn.buffered -= len(data)
        if conn.paused and conn.buffered <= LOW_WATER and conn.transport is not None:
            conn.paused = False
            conn.transport.resume_reading()
        last = conn.complete and not conn.chunks
        if last:
            self.release()
        return data, last

    def release(self) -> None:
        """Back to the pool when the answer was read to its end on a reusable connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.complete and not conn.lost and not self._head and conn.keep_alive:
            self._client._put(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Drop the connection (the body is not wanted, or broke)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()


class UpstreamClient:
    """Keep-alive connections to storage elements, for download bodies only."""

    def __init__(self, timeout: float, connect_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._closed = False

    @staticmethod
    def supports(url: str) -> bool:
        return url.startswith("http://")

    def _put(self, conn: _Conn) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if self._closed or len(idle) >= MAX_IDLE_PER_SE:
            conn.close()
            return
        conn.reset()
        conn.parser = httptools.HttpResponseParser(conn)
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.lost and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self, key: tuple[str, int]) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Conn(key), key[0], key[1])
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to the storage element: {exc!r}") from exc
        return conn

    async def request(self, method: str, url: str, headers: dict[str, str]) -> UpstreamResponse:
        """Send the request and wait for the status line and headers."""
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        key = (host, parts.port or 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
        rid = request_id_var.get()
        if rid != "-":
            lines.append(f"X-Request-ID: {rid}")
        for k, v in headers.items():
            if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
                raise UpstreamError("header with a line break")
            lines.append(f"{k}: {v}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        reused = self._take(key)
        conn = reused or await self._connect(key)
        try:
            return await self._exchange(conn, head, method)
        except UpstreamTimeout:
            raise
        except UpstreamError:
            if reused is None:
                raise
        # A pooled connection the SE closed meanwhile: once more on a fresh one.
        return await self._exchange(await self._connect(key), head, method)

    async def _exchange(self, conn: _Conn, head: bytes, method: str) -> UpstreamResponse:
        assert conn.transport is not None
        conn.head_request = method == "HEAD"
        try:
            conn.transport.write(head)
            while not conn.head:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self.timeout)
        except BaseException:
            conn.abort()
            raise
        return UpstreamResponse(self, conn, method)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
