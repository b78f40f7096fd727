"""A lean HTTP/1.1 client for the one hot request: ``POST {se}/api/v1/files`` with a
streamed body.

httpx/httpcore cost more of the ingester's CPU per small upload than all of its own
work (on every request its pool asks each idle connection's socket whether it is still
readable, through anyio's typed attributes; the body goes out in one socket send per
chunk; the answer goes through cookie and redirect handling). This client keeps a few
keep-alive connections per SE on plain asyncio streams:

- the request head and the first body chunk leave in one write (a small file in one
  segment), the rest of the body as it comes, with ``Content-Length`` when known
  (else chunked);
- ``on_start`` is called once the connection is open, just before the first body chunk
  is asked for: a failure before that point never touched the body (the caller may try
  another SE);
- an idle connection is reused only while younger than ``_IDLE_EXPIRY`` (below
  uvicorn's 5 s keep-alive) and not closed by the SE; a request that fails or is
  cancelled closes its connection (the SE sees the body cut short and rolls back).

Everything else the ingester asks an SE (``/info``, tus, finalize, clean-up) still goes
through httpx.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from artstore.common.logs import request_id_var

_IDLE_EXPIRY = 3.0  # seconds; uvicorn closes an idle keep-alive connection after 5
_MAX_IDLE = 64  # kept per SE
_HIGH_WATER = 256 * 1024  # bytes buffered in the transport before we wait for the socket
_MAX_HEAD = 64 * 1024


class ProtocolError(Exception):
    """The SE's answer was not HTTP/1.1 as expected (or the connection closed)."""


class ConnectFailed(Exception):
    """The connection could not be opened: nothing of the request was sent."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < _IDLE_EXPIRY
            and not self.reader.at_eof()
            and not self.writer.transport.is_closing()
        )

    def abort(self) -> None:
        self.writer.transport.abort()


def http_origin(url: str) -> tuple[str, int] | None:
    """(host, port) of a plain ``http://`` base URL; None for anything else (https...)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    return parts.hostname, parts.port or 80


class SEClient:
    def __init__(self, *, connect_timeout: float, timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._idle: dict[tuple[str, int], collections.deque[_Conn]] = {}

    async def _connect(self, origin: tuple[str, int]) -> _Conn:
        pool = self._idle.get(origin)
        now = time.monotonic()
        while pool:
            conn = pool.pop()  # the most recently used: the least likely to be stale
            if conn.usable(now):
                return conn
            conn.abort()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(*origin, limit=_MAX_HEAD)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        return _Conn(reader, writer)

    def _release(self, origin: tuple[str, int], conn: _Conn) -> None:
        pool = self._idle.setdefault(origin, collections.deque())
        now = time.monotonic()
        while pool and not pool[0].usable(now):  # the oldest first: close what expired
            pool.popleft().abort()
        if len(pool) >= _MAX_IDLE:
            conn.abort()
            return
        conn.idle_since = now
        pool.append(conn)

    async def post(
        self,
        origin: tuple[str, int],
        path: str,
        params: list[tuple[str, str]],
        headers: dict[str, str],
        body: AsyncIterator[bytes],
        on_start: Callable[[], None],
    ) -> Answer:
        """Send the request, the body streamed from ``body``; the SE's whole answer.

        Raises :class:`ConnectFailed` before anything was sent, ``OSError``,
        ``TimeoutError`` or :class:`ProtocolError` after."""
        conn = await self._connect(origin)
        done = False
        try:
            answer, keep = await self._exchange(conn, origin, path, params, headers, body, on_start)
            done = True
        finally:
            if not done:
                conn.abort()
        if keep:
            self._release(origin, conn)
        else:
            conn.abort()
        return answer

    async def _exchange(
        self,
        conn: _Conn,
        origin: tuple[str, int],
        path: str,
        params: list[tuple[str, str]],
        headers: dict[str, str],
        body: AsyncIterator[bytes],
        on_start: Callable[[], None],
    ) -> tuple[Answer, bool]:
        target = f"{path}?{urlencode(params)}" if params else path
        host = f"[{origin[0]}]" if ":" in origin[0] else origin[0]  # an IPv6 address
        lines = [f"POST {target} HTTP/1.1", f"Host: {host}:{origin[1]}"]
        names = {k.lower() for k in headers}
        lines += [f"{k}: {v}" for k, v in headers.items()]
        rid = request_id_var.get()
        if rid != "-" and "x-request-id" not in names:
            lines.append(f"X-Request-ID: {rid}")
        chunked = "content-length" not in names
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer = conn.writer
        on_start()
        try:
            await self._send(writer, head, body, chunked)
        except OSError as exc:
            # The SE may have answered and closed early (413, 507...): its answer, if
            # any, says more than the broken pipe.
            try:
                async with asyncio.timeout(self.timeout):
                    answer, _ = await self._answer(conn.reader)
            except (OSError, ProtocolError, TimeoutError):
                raise exc from None
            return answer, False
        async with asyncio.timeout(self.timeout):
            return await self._answer(conn.reader)

    async def _send(
        self, writer: asyncio.StreamWriter, head: bytes, body: AsyncIterator[bytes], chunked: bool
    ) -> None:
        first = True
        async for chunk in body:
            if chunked:
                if not chunk:
                    continue
                chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
            if first:
                first = False
                if len(chunk) <= 64 * 1024:
                    writer.write(head + chunk)  # a small file leaves in one segment
                    continue
                writer.write(head)
            elif writer.transport.is_closing():  # the SE closed; its answer may be waiting
                raise ConnectionResetError("the storage element closed the connection")
            writer.write(chunk)
            if writer.transport.get_write_buffer_size() > _HIGH_WATER:
                async with asyncio.timeout(self.timeout):
                    await writer.drain()
        if first:
            writer.write(head)
        if chunked:
            writer.write(b"0\r\n\r\n")
        async with asyncio.timeout(self.timeout):
            await writer.drain()

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError("connection closed before the answer") from exc
        except asyncio.LimitOverrunError as exc:
            raise ProtocolError("answer head too long") from exc
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise ProtocolError(f"bad status line {status_line[:80]!r}") from None
        hdrs: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            hdrs[name.strip().lower()] = value.strip()
        keep = version == "HTTP/1.1" and hdrs.get("connection", "").lower() != "close"
        try:
            if "chunked" in hdrs.get("transfer-encoding", "").lower():
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":
                            pass
                        break
                    parts.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                data = b"".join(parts)
            elif "content-length" in hdrs:
                data = await reader.readexactly(int(hdrs["content-length"]))
            elif status in (204, 304) or 100 <= status < 200:
                data = b""
            else:  # delimited by the end of the connection
                data = await reader.read()
                keep = False
        except (asyncio.IncompleteReadError, ValueError) as exc:
            raise ProtocolError("answer cut short or malformed") from exc
        return Answer(status, hdrs, data), keep

    async def aclose(self) -> None:
        for pool in self._idle.values():
            while pool:
                pool.pop().abort()
        self._idle.clear()
