"""tus header helpers and the tus middleware (Tus-Resumable everywhere under the tus
URLs, X-HTTP-Method-Override), and the SE's hand-over of a streaming append."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from artstore.common.errors import ValidationFailed
from artstore.ingester.tus.middleware import TusMiddleware
from artstore.ingester.tus.protocol import upload_checksum
from artstore.storage_element.uploads.handover import Handover, Superseded, chunks


@pytest.mark.parametrize(("algo", "key"), [("sha1", "sha"), ("md5", "md5"), ("sha256", "sha-256")])
def test_upload_checksum_becomes_a_content_digest(algo: str, key: str) -> None:
    digest = base64.b64encode(hashlib.new(algo, b"abc").digest()).decode()
    assert upload_checksum(f"{algo.upper()} {digest}") == f"{key}=:{digest}:"


@pytest.mark.parametrize(
    "header",
    ["crc32 AAAAAA==", "sha1 not-base64!", "md5 " + base64.b64encode(b"short").decode(), "sha1"],
)
def test_upload_checksum_refuses(header: str) -> None:
    with pytest.raises(ValidationFailed):
        upload_checksum(header)


def test_no_upload_checksum() -> None:
    assert upload_checksum(None) is None and upload_checksum("") is None


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    status = 404 if scope["path"].endswith("/missing") else 200
    headers = [(b"x-method", scope["method"].encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _ask(method: str, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=TusMiddleware(_echo))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.request(method, path, headers=headers)


async def test_every_tus_answer_says_tus_resumable() -> None:
    for path in ("/api/v1/uploads", "/api/v1/uploads/se/id", "/api/v1/uploads/missing"):
        assert (await _ask("GET", path)).headers["tus-resumable"] == "1.0.0"
    for path in ("/api/v1/files/x", "/api/v1/uploadsx", "/health/live"):
        assert "tus-resumable" not in (await _ask("GET", path)).headers


async def test_method_override_only_for_tus_methods_on_post() -> None:
    path = "/api/v1/uploads/se/id"
    for asked in ("PATCH", "delete", "Head"):
        r = await _ask("POST", path, **{"X-HTTP-Method-Override": asked})
        assert r.headers["x-method"] == asked.upper()
    for asked in ("GET", "PUT", "OPTIONS", "POST", ""):
        r = await _ask("POST", path, **{"X-HTTP-Method-Override": asked})
        assert r.headers["x-method"] == "POST"
    r = await _ask("PUT", path, **{"X-HTTP-Method-Override": "PATCH"})
    assert r.headers["x-method"] == "PUT"  # only a POST is overridden
    r = await _ask("POST", "/api/v1/files/x", **{"X-HTTP-Method-Override": "DELETE"})
    assert r.headers["x-method"] == "POST"  # and only under the tus URLs


async def _trickle(first: list[bytes], hang: asyncio.Event) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    await hang.wait()  # a client that stops sending
    yield b"never"


async def test_a_hung_body_stops_when_asked() -> None:
    handover, root = Handover(), Path("/data")
    got: list[bytes] = []

    async def read() -> None:
        with handover.running(root, "s1") as stop:
            async for chunk in chunks(_trickle([b"a", b"b"], asyncio.Event()), stop):
                got.append(chunk)

    reader = asyncio.create_task(read())
    while len(got) < 2:
        await asyncio.sleep(0)
    handover.ask_to_stop(root, "s2")  # another session: nothing happens
    handover.ask_to_stop(root, "s1")
    with pytest.raises(Superseded):
        await reader
    assert got == [b"a", b"b"]
    handover.ask_to_stop(root, "s1")  # nothing running any more: a no-op


async def test_a_whole_body_reads_through() -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in (b"x", b"y", b"z"):
            yield chunk

    assert [c async for c in chunks(body(), asyncio.Event())] == [b"x", b"y", b"z"]
