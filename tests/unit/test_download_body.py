"""The SE's download body (files/download.py): chunking, the checksum held to the last
chunk, the reader always closed, a gone client stops the reading (issue 7)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any

import pytest
import xxhash

from artstore.storage_element.files.download import (
    HOLD_BACK,
    BlobBody,
    BlobResponse,
    CorruptBlob,
)


class FakeReader:
    def __init__(self, data: bytes, delay: float = 0.0, max_read: int = 1 << 30) -> None:
        self.data = data
        self.max_read = max_read
        self.pos = 0
        self.reads: list[int] = []
        self.closed = 0
        self.delay = delay
        self.in_read = threading.Event()

    def read(self, n: int) -> bytes:
        assert not self.closed, "read after close"
        self.in_read.set()
        if self.delay:
            threading.Event().wait(self.delay)
        self.reads.append(n)
        out = self.data[self.pos : self.pos + min(n, self.max_read)]
        self.pos += len(out)
        return out

    def close(self) -> None:
        self.closed += 1


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Client:
    """ASGI send/receive: records messages; ``gone`` answers http.disconnect."""

    def __init__(self, gone_after: int | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.gone_after = gone_after
        self.asked = 0

    async def send(self, message: Any) -> None:
        self.messages.append(message)
        bodies = [m for m in self.messages if m["type"] == "http.response.body"]
        if self.gone_after is not None and len(bodies) >= self.gone_after:
            self.gone.set()
        await asyncio.sleep(0)

    async def receive(self) -> Any:
        self.asked += 1
        if self.asked == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self.messages if m["type"] == "http.response.body")

    @property
    def finished(self) -> bool:
        last = self.messages[-1]
        return bool(last["type"] == "http.response.body" and not last["more_body"])


def respond(data: bytes, chunk: int, expected: str | None, client: Client, **kw: Any) -> Any:
    reader = FakeReader(data, **kw)

    async def go() -> None:
        body = BlobBody(reader, len(data), chunk, expected)
        first = await asyncio.to_thread(body.read_step)
        resp = BlobResponse(body, first, 200, {"Content-Length": str(len(data))}, None)
        await resp({"type": "http", "asgi": {"spec_version": "2.3"}}, client.receive, client.send)

    asyncio.run(go())
    return reader


@pytest.mark.parametrize("size", [0, 1, 1000, 1024, 4096, 4097, 10_000])
def test_every_size_streams_whole_in_chunks_and_closes(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    client = Client()
    reader = respond(data, 1024, sha(data), client)
    assert client.body == data and client.finished
    assert reader.closed == 1
    assert all(n <= 1024 for n in reader.reads)
    # one message per chunk (an empty file: one empty message)
    bodies = [m for m in client.messages if m["type"] == "http.response.body"]
    assert len(bodies) == max(1, -(-size // 1024))
    assert client.messages[0]["type"] == "http.response.start"


def test_single_chunk_is_read_verified_and_closed_before_the_response() -> None:
    data = b"x" * 500
    reader = FakeReader(data)
    body = BlobBody(reader, len(data), 1024, sha(data))
    assert body.read_step() == data
    assert body.done and not body.corrupt and reader.closed == 1


@pytest.mark.parametrize("size", [500, 5000])
def test_mismatch_cuts_the_answer_before_the_last_chunk_and_reports(size: int) -> None:
    data = b"y" * size
    reported: list[bool] = []

    async def on_mismatch() -> None:
        reported.append(True)

    reader = FakeReader(data)
    client = Client()

    async def go() -> None:
        body = BlobBody(reader, len(data), 1024, sha(b"something else"))
        first = await asyncio.to_thread(body.read_step)
        resp = BlobResponse(body, first, 200, {}, None, on_mismatch)
        await resp({"type": "http"}, client.receive, client.send)

    with pytest.raises(CorruptBlob):
        asyncio.run(go())
    assert reported == [True]
    assert len(client.body) < size  # the last chunk never left
    assert len(client.body) == (size - 1) // 1024 * 1024
    assert not client.finished or len(client.messages) == 1
    assert reader.closed == 1


def test_range_is_not_verified() -> None:
    data = b"z" * 3000
    client = Client()
    reader = respond(data, 1024, None, client)
    assert client.body == data and reader.closed == 1


def test_short_blob_is_an_error_and_closes() -> None:
    reader = FakeReader(b"a" * 100)
    body = BlobBody(reader, 200, 1024, None)
    assert body.read_step() == b"a" * 100
    with pytest.raises(OSError, match="early"):
        body.read_step()
    assert reader.closed == 1


def test_a_gone_client_stops_the_reading_and_the_reader_is_closed_once() -> None:
    data = b"q" * 100 * 1024
    client = Client(gone_after=3)
    reader = respond(data, 1024, sha(data), client, delay=0.002)
    assert len(client.body) < len(data) // 2
    assert reader.closed == 1
    assert len(reader.reads) < 20


def test_a_large_last_chunk_is_hashed_while_all_but_its_tail_is_sent() -> None:
    size = 3 * HOLD_BACK + 100
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    client = Client()
    reader = respond(data, 4 * HOLD_BACK, sha(data), client)
    assert client.body == data and client.finished and reader.closed == 1
    bodies = [m["body"] for m in client.messages if m["type"] == "http.response.body"]
    assert [len(b) for b in bodies] == [size - HOLD_BACK, HOLD_BACK]


@pytest.mark.parametrize("size", [3 * HOLD_BACK, 5 * HOLD_BACK + 7])
def test_a_large_last_chunk_that_mismatches_never_sends_its_tail(size: int) -> None:
    data = b"w" * size
    reported: list[bool] = []

    async def on_mismatch() -> None:
        reported.append(True)

    client = Client()
    chunk = 4 * HOLD_BACK

    async def go() -> None:
        body = BlobBody(FakeReader(data), len(data), chunk, sha(b"other"))
        first = await asyncio.to_thread(body.read_step)
        resp = BlobResponse(body, first, 200, {}, None, on_mismatch)
        await resp({"type": "http"}, client.receive, client.send)

    with pytest.raises(CorruptBlob):
        asyncio.run(go())
    assert reported == [True]
    assert len(client.body) == size - HOLD_BACK and not client.finished


@pytest.mark.parametrize("max_read", [1000, HOLD_BACK - 1, HOLD_BACK + 1, 3 * HOLD_BACK])
def test_short_reads_still_give_the_whole_file_verified(max_read: int) -> None:
    size = 5 * HOLD_BACK + 3
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    client = Client()
    reader = respond(data, 4 * HOLD_BACK, sha(data), client, max_read=max_read)
    assert client.body == data and client.finished and reader.closed == 1
    bad = Client()

    async def go() -> None:
        body = BlobBody(FakeReader(data, max_read=max_read), size, 4 * HOLD_BACK, sha(b"x"))
        first = await asyncio.to_thread(body.read_step)
        await BlobResponse(body, first, 200, {}, None)({"type": "http"}, bad.receive, bad.send)

    with pytest.raises(CorruptBlob):
        asyncio.run(go())
    assert len(bad.body) <= size - min(HOLD_BACK, max_read) and not bad.finished


@pytest.mark.parametrize("size", [500, 3 * HOLD_BACK + 7])
def test_the_bitrot_hasher_verifies_instead_of_sha256(size: int) -> None:
    """Given the attr's bit-rot hasher (issue 19), the body checks its digest, not SHA-256's."""
    data = bytes(range(256)) * (size // 256) + b"t" * (size % 256)
    for expected, corrupt in ((xxhash.xxh3_128_hexdigest(data), False), (sha(data), True)):
        body = BlobBody(FakeReader(data), len(data), 4 * HOLD_BACK, expected, xxhash.xxh3_128())
        while not body.done:
            body.read_step()
        body.verify_last()
        assert body.corrupt is corrupt
