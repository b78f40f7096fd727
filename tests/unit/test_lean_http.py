"""The shared lean HTTP/1.1 client of the SE data paths (common/lean_http.py) against
small HTTP/1.1 servers on asyncio (issue 7): download bodies as the query reads them
(GET/HEAD, streamed answers, flow control, the pool), upload requests as the ingester
sends them (POST with a streamed body, both framings, an answer sent before the body was
read, no SE at all)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from artstore.common import lean_http
from artstore.common.lean_http import (
    ConnectFailed,
    UpstreamClient,
    UpstreamError,
    UpstreamTimeout,
    origin,
)
from artstore.common.logs import request_id_var
from tests.support.process import free_port

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


async def read_all(resp: lean_http.UpstreamResponse) -> tuple[bytes, int]:
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
            assert "x-request-id" not in server.requests[0]
            token = request_id_var.set("rid-1")
            try:
                await read_all(await client.request("GET", f"{base}/f/1", {}))
            finally:
                request_id_var.reset(token)
            assert server.requests[-1]["x-request-id"] == "rid-1"
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
            conn = resp._conn
            assert conn is not None
            await _until(lambda: conn.paused)  # the server could send all 8 MiB meanwhile
            assert conn.buffered < lean_http.HIGH_WATER + 512 * 1024
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
        with pytest.raises(ConnectFailed):
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


# -- requests with a body (the ingester's upload) ------------------------------------------

BodyHandler = Callable[[dict[str, str], asyncio.StreamReader], Awaitable[tuple[int, bytes, bool]]]


class FakeSE:
    """Answers each request with what ``handler`` returns: (status, body, keep open)."""

    def __init__(self, handler: BodyHandler) -> None:
        self.handler = handler
        self.connections = 0
        self.bodies: list[bytes] = []
        self.heads: list[dict[str, str]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeSE:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}  # fmt: skip
                headers[":target"] = lines[0].split(" ")[1]
                self.heads.append(headers)
                status, body, keep = await self.handler(headers, reader)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                if not keep:
                    await asyncio.gather(*self.tasks, return_exceptions=True)
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def read_body(self, headers: dict[str, str], reader: asyncio.StreamReader) -> bytes:
        if "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        else:
            assert headers.get("transfer-encoding") == "chunked"
            parts = []
            while (size := int(await reader.readuntil(b"\r\n"), 16)) > 0:
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readexactly(2)
            data = b"".join(parts)
        self.bodies.append(data)
        return data


async def _body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _until(done: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait (bounded) for a condition the event loop brings about."""
    deadline = asyncio.get_running_loop().time() + limit
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def _until_still(value: Callable[[], int], quiet: float = 0.2, limit: float = 10.0) -> None:
    """Wait until ``value`` is non-zero and stops changing for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last, since = value(), loop.time()
    while not (last and loop.time() - since >= quiet):
        assert loop.time() < deadline, "value never settled"
        await asyncio.sleep(0.02)
        if value() != last:
            last, since = value(), loop.time()


def _client() -> UpstreamClient:
    return UpstreamClient(connect_timeout=2, timeout=10)


async def _post(
    client: UpstreamClient,
    url: str,
    headers: dict[str, str],
    body: AsyncIterator[bytes],
    on_start: Callable[[], Any] = lambda: None,
    params: list[tuple[str, str]] | None = None,
) -> tuple[int, bytes]:
    resp = await client.request(
        "POST", f"{url}/api/v1/files", headers, params=params, body=body, on_start=on_start
    )
    return resp.status_code, await resp.read()


async def test_keep_alive_both_framings_and_the_answer() -> None:
    async def echo(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        data = await server.read_body(headers, reader)
        return 201, json.dumps({"size": len(data), "target": headers[":target"]}).encode(), True

    async with FakeSE(echo) as server:
        client = _client()
        started: list[bool] = []
        token = request_id_var.set("rid-2")
        try:
            sized = await _post(
                client,
                server.url,
                {"Content-Length": "6"},
                _body(b"abc", b"def"),
                lambda: started.append(True),
                [("filename", "a b.txt")],
            )
        finally:
            request_id_var.reset(token)
        chunked = await _post(client, server.url, {}, _body(b"x" * 100_000, b"", b"yz"))
        empty = await _post(client, server.url, {}, _body())
        await client.aclose()
    assert started == [True]
    assert sized[0] == 201 and json.loads(sized[1]) == {
        "size": 6,
        "target": "/api/v1/files?filename=a+b.txt",
    }
    assert json.loads(chunked[1])["size"] == 100_002
    assert json.loads(empty[1])["size"] == 0
    assert server.bodies == [b"abcdef", b"x" * 100_000 + b"yz", b""]
    assert server.heads[0]["x-request-id"] == "rid-2" and "x-request-id" not in server.heads[1]
    assert server.connections == 1  # every request reused the first connection


async def test_an_answer_before_the_body_is_read_is_returned() -> None:
    async def refuse(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        # Answers at once, then (like uvicorn) reads what comes of the body.
        async def discard() -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await server.read_body(headers, reader)

        server.tasks.append(asyncio.create_task(discard()))
        return 507, b'{"error": {"code": "STORAGE_FULL", "message": "no room"}}', False

    pulled = 0

    async def big() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(total // 65536):
            pulled += 1
            await asyncio.sleep(0)  # like a real source (a client's body, a queue)
            yield b"z" * 65536

    total = 64 * 1024 * 1024
    async with FakeSE(refuse) as server:
        client = _client()
        status, data = await _post(client, server.url, {"Content-Length": str(total)}, big())
        await client.aclose()
    assert status == 507
    assert json.loads(data)["error"]["code"] == "STORAGE_FULL"
    assert pulled < total // 65536  # the sending stopped once the answer was there


async def test_a_connection_the_se_closed_while_idle_is_not_reused() -> None:
    async def once(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        await server.read_body(headers, reader)
        return 201, b"{}", False  # closes after answering, without saying so

    async with FakeSE(once) as server:
        client = _client()
        for _ in range(3):
            status, _ = await _post(client, server.url, {"Content-Length": "1"}, _body(b"q"))
            assert status == 201
            await _until(lambda: all(c.lost for q in client._idle.values() for c in q))
        await client.aclose()
    assert server.connections == 3


async def test_no_se_listening_fails_before_anything_is_sent() -> None:
    client = _client()
    started: list[bool] = []
    with pytest.raises(ConnectFailed):
        await _post(
            client, f"http://127.0.0.1:{free_port()}", {}, _body(b"never"),
            lambda: started.append(True),
        )  # fmt: skip
    assert started == []


async def test_a_body_error_passes_through_and_cuts_the_request_short() -> None:
    class SourceBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        raise SourceBroke

    seen: list[BaseException] = []

    async def reads(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        try:
            await server.read_body(headers, reader)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            seen.append(exc)
            raise
        return 201, b"{}", True

    async with FakeSE(reads) as server:
        client = _client()
        with pytest.raises(SourceBroke):
            await _post(client, server.url, {"Content-Length": "5000"}, broken())
        # the next request works, on a new connection
        status, _ = await _post(client, server.url, {"Content-Length": "1"}, _body(b"q"))
        await client.aclose()
    assert status == 201
    assert len(seen) == 1 and server.connections == 2


async def test_a_body_is_pulled_only_as_fast_as_the_se_takes_it() -> None:
    release = asyncio.Event()

    received = 0

    async def slow(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        nonlocal received
        await release.wait()  # reads nothing of the body meanwhile
        while received < int(headers["content-length"]):
            data = await reader.read(1024 * 1024)
            if not data:
                break
            received += len(data)
        return 201, b"{}", True

    pulled = 0
    chunk = b"w" * 65536
    total = 64 * 1024 * 1024

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(total // len(chunk)):
            pulled += 1
            yield chunk

    async with FakeSE(slow) as server:
        client = _client()
        task = asyncio.create_task(
            _post(client, server.url, {"Content-Length": str(total)}, endless())
        )
        await _until_still(lambda: pulled)  # the client stopped pulling: it waits for the SE
        # socket buffers and the transport's high-water mark, far from all of it
        assert pulled * len(chunk) < total // 2
        release.set()
        status, _ = await task
        await client.aclose()
    assert status == 201 and received == total


def test_only_plain_http_origins() -> None:
    assert origin("http://se-1:8010") == ("se-1", 8010)
    assert origin("http://127.0.0.1") == ("127.0.0.1", 80)
    assert origin("http://[::1]:8010") == ("::1", 8010)
    assert origin("https://se-1:8443") is None
    assert UpstreamClient.supports("http://se-1:8010")
    assert not UpstreamClient.supports("https://se-1:8443")
