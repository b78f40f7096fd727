"""The query module's lean client for SE download bodies (query/files/upstream.py)
against a small HTTP/1.1 server on asyncio (issue 7)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from artstore.query.files import upstream
from artstore.query.files.upstream import UpstreamClient, UpstreamError, UpstreamTimeout

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]], Awaitable[bool]]


class Server:
    """Answers each request with the handler; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[dict[str, str]] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                head = {"_line": line.decode().strip()}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    head[k.strip().lower()] = v.strip()
                self.requests.append(head)
                if not await self.handler(reader, writer, head):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for w in self.writers:
            w.close()


def body_of(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest() * (n // 32 + 1)


async def answer(writer: asyncio.StreamWriter, status: int, data: bytes, **headers: str) -> None:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    for i in range(0, len(data), 100_000):
        writer.write(data[i : i + 100_000])
        await writer.drain()
    await writer.drain()


async def serve_size(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: dict[str, str]
) -> bool:
    n = int(head["_line"].split()[1].rsplit("/", 1)[1])
    data = b"" if head["_line"].startswith("HEAD") else body_of(n)[:n]
    if head["_line"].startswith("HEAD"):
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
        await writer.drain()
        return True
    await answer(writer, 200, data, ETag='"e"')
    return True


async def read_all(resp: upstream.UpstreamResponse) -> tuple[bytes, int]:
    parts = []
    while True:
        data, last = await resp.next_chunk()
        parts.append(data)
        if last:
            return b"".join(parts), len(parts)


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro())  # type: ignore[arg-type]


def test_bodies_whole_headers_passed_and_one_connection_reused() -> None:
    async def go() -> None:
        server = Server(serve_size)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)
        try:
            for n in (0, 1, 1000, 3 * 1024 * 1024 + 7, 5):
                resp = await client.request("GET", f"{base}/f/{n}", {"Range": "bytes=0-"})
                assert resp.status_code == 200 and resp.header(b"etag") == b'"e"'
                data, _ = await read_all(resp)
                assert data == body_of(n)[:n]
            assert server.connections == 1
            assert server.requests[0]["range"] == "bytes=0-"
            assert server.requests[0]["_line"] == "GET /f/0 HTTP/1.1"
        finally:
            await client.aclose()
            await server.stop()

    run(go)


def test_concurrent_requests_use_separate_connections_then_pool_them() -> None:
    async def go() -> None:
        server = Server(serve_size)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)

        async def one(n: int) -> bytes:
            resp = await client.request("GET", f"{base}/f/{n}", {})
            return (await read_all(resp))[0]

        try:
            sizes = [200_000 + i for i in range(8)]
            for _ in range(3):
                got = await asyncio.gather(*(one(n) for n in sizes))
                assert got == [body_of(n)[:n] for n in sizes]
            assert server.connections == 8
        finally:
            await client.aclose()
            await server.stop()

    run(go)


def test_flow_control_pauses_reading_while_the_caller_is_slow() -> None:
    async def go() -> None:
        server = Server(serve_size)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)
        n = 8 * 1024 * 1024
        try:
            resp = await client.request("GET", f"{base}/f/{n}", {})
            await asyncio.sleep(0.3)  # the server could send it all meanwhile
            conn = resp._conn
            assert conn is not None and conn.paused
            assert conn.buffered < upstream.HIGH_WATER + 512 * 1024
            data, _ = await read_all(resp)
            assert data == body_of(n)[:n]
        finally:
            await client.aclose()
            await server.stop()

    run(go)


def test_a_pooled_connection_the_server_closed_is_replaced() -> None:
    async def go() -> None:
        server = Server(serve_size)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)
        try:
            resp = await client.request("GET", f"{base}/f/10", {})
            await read_all(resp)
            for w in server.writers:
                w.close()  # what an SE does to an idle keep-alive connection
            await asyncio.sleep(0.05)
            resp = await client.request("GET", f"{base}/f/20", {})
            assert (await read_all(resp))[0] == body_of(20)[:20]
            assert server.connections == 2
        finally:
            await client.aclose()
            await server.stop()

    run(go)


def test_a_stale_pooled_connection_is_retried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SE closes the connection just as the request is written: a fresh one."""
    closes = {"left": 1}

    async def flaky(reader: Any, writer: asyncio.StreamWriter, head: dict[str, str]) -> bool:
        if len(head) and head["_line"].endswith("/f/2 HTTP/1.1") and closes["left"]:
            closes["left"] -= 1
            return False  # drop the connection without answering
        return await serve_size(reader, writer, head)

    async def go() -> None:
        server = Server(flaky)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)
        try:
            await read_all(await client.request("GET", f"{base}/f/1", {}))
            resp = await client.request("GET", f"{base}/f/2", {})
            assert (await read_all(resp))[0] == body_of(2)[:2]
            assert server.connections == 2
            # a fresh connection that fails is not retried
            closes["left"] = 1
            await client.aclose()
            client = UpstreamClient(timeout=5, connect_timeout=2)
            with pytest.raises(UpstreamError):
                await client.request("GET", f"{base}/f/2", {})
        finally:
            await client.aclose()
            await server.stop()

    run(go)


def test_head_returns_headers_and_the_connection_is_not_reused() -> None:
    async def go() -> None:
        server = Server(serve_size)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)
        try:
            resp = await client.request("HEAD", f"{base}/f/123", {})
            assert resp.status_code == 200 and resp.header(b"content-length") == b"123"
            resp.release()
            await read_all(await client.request("GET", f"{base}/f/3", {}))
            assert server.connections == 2
        finally:
            await client.aclose()
            await server.stop()

    run(go)


def test_connect_refused_and_timeouts_are_upstream_errors() -> None:
    async def silent(reader: Any, writer: asyncio.StreamWriter, head: dict[str, str]) -> bool:
        await asyncio.sleep(5)
        return False

    async def stalls(reader: Any, writer: asyncio.StreamWriter, head: dict[str, str]) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(5)
        return False

    async def go() -> None:
        client = UpstreamClient(timeout=0.3, connect_timeout=0.5)
        server = Server(silent)
        base = await server.start()
        port = base.rsplit(":", 1)[1]
        await server.stop()
        with pytest.raises(UpstreamError):
            await client.request("GET", f"http://127.0.0.1:{port}/f/1", {})  # refused
        server = Server(silent)
        base = await server.start()
        with pytest.raises(UpstreamTimeout):
            await client.request("GET", f"{base}/f/1", {})
        await server.stop()
        server = Server(stalls)
        base = await server.start()
        resp = await client.request("GET", f"{base}/f/1", {})
        assert await resp.next_chunk() == (b"abc", False)
        with pytest.raises(UpstreamTimeout):
            await resp.next_chunk()
        await client.aclose()
        await server.stop()

    run(go)


def test_a_body_cut_short_is_an_error_and_a_line_break_in_a_header_is_refused() -> None:
    async def cut(reader: Any, writer: asyncio.StreamWriter, head: dict[str, str]) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        await writer.drain()
        return False

    async def go() -> None:
        server = Server(cut)
        base = await server.start()
        client = UpstreamClient(timeout=5, connect_timeout=2)
        try:
            resp = await client.request("GET", f"{base}/f/1", {})
            with pytest.raises(UpstreamError):
                await read_all(resp)
            with pytest.raises(UpstreamError):
                await client.request("GET", f"{base}/f/1", {"Range": "bytes=0-1\r\nX: y"})
        finally:
            await client.aclose()
            await server.stop()

    run(go)
