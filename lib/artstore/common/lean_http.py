"""A lean HTTP/1.1 client for the hot data paths to storage elements (issue 7).

Two requests carry the bytes: the query's download (GET/HEAD, the answer streamed to the
caller) and the ingester's upload (POST, the body streamed from the caller, a small JSON
answer). httpx moves a body through five layers per 64 KiB (httpx, httpcore, h11, anyio,
the event loop) and its pool polls every idle socket on each request: on these two paths
that cost more CPU than the services' own work. This client speaks only what they need:

- an ``asyncio.Protocol`` with the C parser uvicorn uses (httptools/llhttp); the body of a
  ``Content-Length`` answer bypasses the parser, handed on in the pieces the event loop
  read (up to 256 KiB with uvloop, no re-buffering, no copy);
- flow control both ways: the socket stops being read while ``HIGH_WATER`` answer bytes
  wait for the caller; a request body is awaited only while more than
  ``WRITE_HIGH_WATER`` bytes wait in the transport;
- a request body from an async iterator, with ``Content-Length`` when the caller gives
  one, else chunked; the head and a first chunk up to ``FIRST_WRITE`` leave in one write
  (a small file in one segment). ``on_start`` is called once the connection is open, just
  before the first chunk is pulled: a failure before it never touched the body, so the
  caller may send it elsewhere;
- a refusal that arrives while the body is still being sent (413/507 before the SE read
  it) ends the sending and is returned, also when the SE closed the connection after it;
- keep-alive connections pooled per (host, port): at most ``MAX_IDLE_PER_SE`` idle, each
  reused only while younger than ``IDLE_SECONDS`` and not closed by the SE. A pooled
  connection that fails before the status line of a request without a body (the SE
  closed it meanwhile) is retried once on a fresh one; a timeout is not. A request that
  fails or is cancelled aborts its connection, so the SE sees a body cut short.

Every failure is an :class:`UpstreamError` (an ``OSError``): :class:`ConnectFailed` when
nothing of the request was sent, :class:`UpstreamTimeout`, :class:`ProtocolError`, or
the base class for a connection that broke. What a body iterator raises passes through
as it is. ``X-Request-ID`` is passed on like the httpx clients do (``httpclient.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast
from urllib.parse import urlencode, urlsplit

import httptools

from artstore.common.logs import request_id_var

HIGH_WATER = 1024 * 1024  # answer bytes waiting for the caller before the socket pauses
LOW_WATER = 256 * 1024
WRITE_HIGH_WATER = 256 * 1024  # request bytes in the transport before the body waits
FIRST_WRITE = 64 * 1024  # a first body chunk up to this size leaves with the head
IDLE_SECONDS = 3.0  # below uvicorn's 5 s keep-alive, so the SE never closes one under us
MAX_IDLE_PER_SE = 64


class UpstreamError(OSError):
    """The SE could not be reached, timed out, or broke the exchange."""


class ConnectFailed(UpstreamError):
    """The connection could not be opened: nothing of the request was sent."""


class UpstreamTimeout(UpstreamError):
    """No answer (or no next piece of it, or no room for more body) within the timeout."""


class ProtocolError(UpstreamError):
    """The SE's answer was not the HTTP/1.1 expected."""


def origin(url: str) -> tuple[str, int] | None:
    """(host, port) of a plain ``http://`` URL; None for anything else (https...)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    return parts.hostname, parts.port or 80


class _Conn(asyncio.Protocol):
    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.write_paused = False
        self.idle_since = 0.0
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = False
        self.keep_alive = False
        self.head_request = False
        self.until_eof = False  # the answer body ends with the connection
        self.body_left: int | None = None  # Content-Length still to come, once known
        self.bypass = False  # the body arrives straight from data_received
        self.complete = False
        self.sent_all = True  # False while a request body is (or stopped) being sent
        self.error: BaseException | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    def stopped(self) -> bool:
        """Sending more body is pointless: the SE refused the request already, or the
        connection is done. (A 2xx that came with the last byte still lets the body run
        to its end: callers count and hash it, a batch reads on from there.)"""
        return self.lost or self.error is not None or (self.head and self.status >= 300)

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake()

    def data_received(self, data: bytes) -> None:
        if self.bypass:
            # Past the head of a Content-Length answer: the bytes as the loop read them,
            # no parser, no copy.
            assert self.body_left is not None
            if len(data) > self.body_left:
                self._fail(ProtocolError("storage element sent more than Content-Length"))
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
            self._fail(ProtocolError(f"bad answer from the storage element: {exc}"))
            self.close()
            return
        if self.body_left is not None and not self.complete:
            self.bypass = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.write_paused = False
        if self.until_eof and self.head and exc is None:
            self.complete = True
        if not self.complete:
            self._fail(UpstreamError(f"storage element closed the connection ({exc})"))
        self._wake()

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
            if te is None and length is None:
                self.until_eof = True
            elif te is None and length is not None and length.isdigit():
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
        """Until the next event on this connection; a timeout fails and closes it."""
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
    """The SE's status line and headers; the body through :meth:`next_chunk` (streamed)
    or :meth:`read` (whole)."""

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
        if self._head:
            self.release()
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

    async def read(self) -> bytes:
        """The whole body, for small answers (JSON, an error); then the connection is
        released."""
        parts: list[bytes] = []
        try:
            while True:
                data, last = await self.next_chunk()
                if data:
                    parts.append(data)
                if last:
                    return b"".join(parts)
        except BaseException:
            self.close()  # cancelled or timed out: the connection is not left open
            raise

    def release(self) -> None:
        """Back to the pool when the answer was read to its end on a reusable connection
        (and all of the request body went out); closed otherwise."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.complete and not conn.lost and not self._head and conn.keep_alive and conn.sent_all:
            self._client._put(conn)
        elif conn.sent_all:
            conn.close()
        else:
            conn.abort()  # body bytes may wait in the transport: close() would flush them

    def close(self) -> None:
        """Drop the connection (the body is not wanted, or broke)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()


class UpstreamClient:
    """Keep-alive connections to storage elements, for the data paths."""

    def __init__(self, *, timeout: float, connect_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], deque[_Conn]] = {}
        self._closed = False

    @staticmethod
    def supports(url: str) -> bool:
        """Whether ``url`` is for this client (plain ``http://``); others go to httpx."""
        return origin(url) is not None

    def _put(self, conn: _Conn) -> None:
        idle = self._idle.setdefault(conn.key, deque())
        now = time.monotonic()
        # The oldest first: drop what expired or the SE closed, so dead ones do not fill
        # the pool while the newest are reused.
        while idle and (idle[0].lost or now - idle[0].idle_since >= IDLE_SECONDS):
            idle.popleft().close()
        if self._closed or len(idle) >= MAX_IDLE_PER_SE:
            conn.close()
            return
        conn.reset()
        conn.parser = httptools.HttpResponseParser(conn)
        conn.idle_since = now
        idle.append(conn)

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be stale
            # Anything the SE sent while idle (a 408, garbage) makes it unusable too.
            fresh = not (conn.lost or conn.error or conn.head or conn.headers or conn.chunks)
            if fresh and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self, key: tuple[str, int]) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Conn(key), key[0], key[1])
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to the storage element: {exc!r}") from exc
        return conn

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        params: list[tuple[str, str]] | None = None,
        body: AsyncIterator[bytes] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> UpstreamResponse:
        """Send the request (``body`` streamed when given) and wait for the status line
        and headers. ``on_start`` (with a body only) is called just before the first
        body chunk is pulled; a :class:`ConnectFailed` comes before it."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not a plain http:// URL: {url!r}")
        key = (parts.hostname, parts.port or 80)
        query = parts.query
        if params:
            query = f"{query}&{urlencode(params)}" if query else urlencode(params)
        target = (parts.path or "/") + (f"?{query}" if query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
        names: set[str] = set()
        for k, v in headers.items():
            if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
                raise UpstreamError("header with a line break")
            names.add(k.lower())
            lines.append(f"{k}: {v}")
        rid = request_id_var.get()
        if rid != "-" and "x-request-id" not in names:
            lines.append(f"X-Request-ID: {rid}")
        chunked = body is not None and "content-length" not in names
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        reused = self._take(key)
        conn = reused or await self._connect(key)
        try:
            return await self._exchange(conn, head, method, body, chunked, on_start)
        except UpstreamTimeout:
            raise
        except UpstreamError:
            # Only a request without a body can be sent again: a body was pulled already.
            if reused is None or body is not None:
                raise
        # A pooled connection the SE closed meanwhile: once more on a fresh one.
        return await self._exchange(await self._connect(key), head, method, None, False, None)

    async def _exchange(
        self,
        conn: _Conn,
        head: bytes,
        method: str,
        body: AsyncIterator[bytes] | None,
        chunked: bool,
        on_start: Callable[[], None] | None,
    ) -> UpstreamResponse:
        assert conn.transport is not None
        conn.head_request = method == "HEAD"
        try:
            if body is None:
                conn.transport.write(head)
            else:
                if on_start is not None:
                    on_start()
                await self._send(conn, head, body, chunked)
            # An answer that came while the body was being sent is returned even when
            # the connection broke after it: it says more than the broken pipe.
            while not conn.head:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self.timeout)
        except BaseException:
            conn.abort()  # the SE sees the request cut short (and rolls an upload back)
            raise
        return UpstreamResponse(self, conn, method)

    async def _send(
        self, conn: _Conn, head: bytes, body: AsyncIterator[bytes], chunked: bool
    ) -> None:
        transport = conn.transport
        assert transport is not None
        conn.sent_all = False
        pending: bytes | None = head  # waits for the first chunk: one write for a small file
        it = aiter(body)
        while not conn.stopped():
            try:
                chunk: bytes | None = await anext(it)
            except StopAsyncIteration:
                chunk = None
            if conn.stopped():
                return  # the SE refused early or went away: its answer (or error) decides
            if chunk is None:
                tail = b"0\r\n\r\n" if chunked else b""
                if pending is not None:
                    tail = pending + tail
                if tail:
                    transport.write(tail)
                conn.sent_all = True
                return
            if not chunk:
                continue  # an empty chunk would end a chunked body
            if chunked:
                chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
            if pending is not None:
                if len(chunk) <= FIRST_WRITE:
                    chunk = pending + chunk
                else:
                    transport.write(pending)
                pending = None
            transport.write(chunk)
            # Wait for the socket only above the high-water mark (pause_writing).
            while conn.write_paused and not conn.stopped():
                await conn.wait(self.timeout)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
