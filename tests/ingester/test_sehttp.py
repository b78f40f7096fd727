"""The ingester's lean HTTP/1.1 client for SE uploads (replication/sehttp.py), against a
small asyncio server that plays the SE: keep-alive reuse, both body framings, an answer
sent before the body was read, a connection the SE closed while idle, no SE at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from artstore.ingester.replication.sehttp import ConnectFailed, SEClient, http_origin
from tests.support.process import free_port

Handler = Callable[[dict[str, str], asyncio.StreamReader], Awaitable[tuple[int, bytes, bool]]]


class FakeServer:
    """Answers each request with what ``handler`` returns: (status, body, keep open)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.bodies: list[bytes] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def origin(self) -> tuple[str, int]:
        assert self.server is not None
        return "127.0.0.1", int(self.server.sockets[0].getsockname()[1])

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
                status, body, keep = await self.handler(headers, reader)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                if not keep:
                    await asyncio.gather(*self.tasks)
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


def _client() -> SEClient:
    return SEClient(connect_timeout=2, timeout=10)


async def test_keep_alive_both_framings_and_the_answer() -> None:
    async def echo(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        data = await server.read_body(headers, reader)
        return 201, json.dumps({"size": len(data), "target": headers[":target"]}).encode(), True

    async with FakeServer(echo) as server:
        client = _client()
        started: list[bool] = []
        sized = await client.post(
            server.origin,
            "/api/v1/files",
            [("filename", "a b.txt")],
            {"Content-Length": "6"},
            _body(b"abc", b"def"),
            lambda: started.append(True),
        )
        chunked = await client.post(
            server.origin, "/api/v1/files", [], {}, _body(b"x" * 100_000, b"", b"yz"), lambda: None
        )
        await client.aclose()
    assert started == [True]
    assert sized.status == 201 and sized.json() == {
        "size": 6,
        "target": "/api/v1/files?filename=a+b.txt",
    }
    assert chunked.json()["size"] == 100_002
    assert server.bodies == [b"abcdef", b"x" * 100_000 + b"yz"]
    assert server.connections == 1  # the second request reused the first connection


async def test_an_answer_before_the_body_is_read_is_returned() -> None:
    async def refuse(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        # Answers at once, then (like uvicorn) reads the rest of the body and closes.
        async def discard() -> None:
            await server.read_body(headers, reader)

        server.tasks.append(asyncio.create_task(discard()))
        return 507, b'{"error": {"code": "STORAGE_FULL", "message": "no room"}}', False

    async with FakeServer(refuse) as server:
        client = _client()
        big = 8 * 1024 * 1024
        answer = await client.post(
            server.origin,
            "/api/v1/files",
            [],
            {"Content-Length": str(big)},
            _body(*([b"z" * 65536] * (big // 65536))),
            lambda: None,
        )
        await client.aclose()
    assert answer.status == 507
    assert answer.json()["error"]["code"] == "STORAGE_FULL"


async def test_a_connection_the_se_closed_while_idle_is_not_reused() -> None:
    async def once(headers: dict[str, str], reader: asyncio.StreamReader) -> Any:
        await server.read_body(headers, reader)
        return 201, b"{}", False  # closes after answering, without saying so

    async with FakeServer(once) as server:
        client = _client()
        for _ in range(3):
            answer = await client.post(
                server.origin, "/api/v1/files", [], {"Content-Length": "1"}, _body(b"q"), list
            )
            assert answer.status == 201
            await asyncio.sleep(0.05)  # let the close reach the client
        await client.aclose()
    assert server.connections == 3


async def test_no_se_listening_fails_before_anything_is_sent() -> None:
    client = _client()
    started: list[bool] = []
    with pytest.raises(ConnectFailed):
        await client.post(
            ("127.0.0.1", free_port()),
            "/api/v1/files",
            [],
            {},
            _body(b"never"),
            lambda: started.append(True),
        )
    assert started == []


def test_only_plain_http_origins() -> None:
    assert http_origin("http://se-1:8010") == ("se-1", 8010)
    assert http_origin("http://127.0.0.1") == ("127.0.0.1", 80)
    assert http_origin("http://[::1]:8010") == ("::1", 8010)
    assert http_origin("https://se-1:8443") is None
