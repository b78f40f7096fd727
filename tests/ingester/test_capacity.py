"""Placement without an ``/info`` request per upload (issue 7): the figures come from
:class:`Capacity` (read in the background, charged with what was placed since), and an
SE that refuses a file for room anyway is marked full and the file goes to the next SE
with its body intact. In-process, against stand-in SEs (an httpx transport)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from artstore.common.auth import Principal
from artstore.common.errors import StorageFull
from artstore.common.lean_http import UpstreamClient
from artstore.common.registry import ServiceToken, StorageElementRef, StorageRegistry
from artstore.common.se_client import Relayed
from artstore.common.se_tokens import SeTokens
from artstore.ingester.metrics import IngestStats
from artstore.ingester.placement.capacity import Capacity
from artstore.ingester.placement.service import NoStorageAvailable, choose
from artstore.ingester.replication.fanout import Replay, TryElsewhere, Upload, fan_out
from artstore.ingester.settings import IGSettings
from artstore.ingester.state import IngesterState
from artstore.ingester.uploads.fields import IngestFields
from artstore.ingester.uploads.service import Incoming, store


@dataclass
class FakeSE:
    """What one stand-in SE says and does."""

    storage_id: str
    mode: str = "edit"
    available: int = 1_000_000
    status: str = "online"
    reachable: bool = True
    refuse_room: bool = False  # answer uploads with 507 (after reading the body)
    info_calls: int = 0
    received: list[bytes] = field(default_factory=list)
    lengths: list[str | None] = field(default_factory=list)  # Content-Length of uploads

    @property
    def url(self) -> str:
        # https: these go through httpx (and its stand-in transport), not lean_http.
        return f"https://{self.storage_id}.test"

    def registry_item(self) -> dict[str, Any]:
        return {
            "storage_id": self.storage_id,
            "url": self.url,
            "mode": self.mode,
            "status": "online",
            "backend": "local",
            "capacity": {"total_bytes": 10**9, "used_bytes": 0,
                         "available_bytes": self.available, "file_count": 0},
        }  # fmt: skip


def _json(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)


class Transport(httpx.AsyncBaseTransport):
    """Like httpx.MockTransport, but the handler reads the body itself (or not: an SE
    that cannot be reached fails before any byte of it is read)."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.world.handle(request)


class _Token(ServiceToken):
    """The ingester's own token (its uploads go with it), without an admin to ask."""

    async def get(self, client: httpx.AsyncClient) -> str:
        return "service"


class _SeTokens(SeTokens):
    """Tokens bound to one SE, without an admin to exchange them at."""

    async def for_caller(self, client: httpx.AsyncClient, subject: str, storage_id: str) -> str:
        return f"{subject}@{storage_id}"


class World:
    def __init__(self, *ses: FakeSE, **settings: Any) -> None:
        self.ses = {se.storage_id: se for se in ses}
        self.http = httpx.AsyncClient(transport=Transport(self))
        self.registry = StorageRegistry("http://admin.test", ServiceToken("", "", ""))
        self.registry._items = {
            se.storage_id: StorageElementRef.of(se.registry_item()) for se in ses
        }
        self.capacity = Capacity(self.registry, self.http, interval=3600)
        self.ing = IngesterState(
            IGSettings(**settings),
            self.registry,
            _Token("", "", ""),
            self.http,
            self.http,
            IngestStats(),
            self.capacity,
            UpstreamClient(connect_timeout=1, timeout=10),
            _SeTokens(_Token("", "", "")),
        )

    def ref(self, storage_id: str) -> StorageElementRef:
        se = self.registry.get(storage_id)
        assert se is not None
        return se

    async def handle(self, request: httpx.Request) -> httpx.Response:
        se = self.ses[request.url.host.removesuffix(".test")]
        if not se.reachable:
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/api/v1/info":
            se.info_calls += 1
            return _json(200, {
                "storage_id": se.storage_id, "name": se.storage_id, "backend": "local",
                "mode": se.mode, "status": se.status, "allowed_operations": ["download", "upload"],
                "capacity": {"total_bytes": 10**9, "used_bytes": 0,
                             "available_bytes": se.available, "file_count": 0},
            })  # fmt: skip
        assert request.method == "POST" and request.url.path == "/api/v1/files"
        se.lengths.append(request.headers.get("content-length"))
        body = await request.aread()
        if se.refuse_room or len(body) > se.available:
            return _json(507, {"error": {"code": "STORAGE_FULL", "message": "no room"}})
        se.received.append(body)
        se.available -= len(body)
        now = "2026-01-01T00:00:00Z"
        return _json(201, {
            "schema_version": 1, "file_id": request.url.params["file_id"],
            "original_filename": request.url.params.get("filename", "f"),
            "content_type": "application/octet-stream", "size": len(body),
            "checksum": "sha256:" + hashlib.sha256(body).hexdigest(), "uploaded_by": "alice",
            "uploaded_at": now, "updated_at": now, "version": 1, "status": "active",
            "retention_policy": "temporary", "ttl_days": 30, "expires_at": None,
            "description": "", "tags": [], "metadata": {}, "storage_element_id": se.storage_id,
        })  # fmt: skip


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


def _upload() -> Upload:
    return Upload([("file_id", "f1"), ("filename", "f")], {}, 10**9)


async def test_placement_reads_no_info_per_upload_and_most_free_spreads() -> None:
    a, b = FakeSE("se-a", available=100_000), FakeSE("se-b", available=100_000)
    w = World(a, b)
    placed = [choose(w.ing, "temporary", 1, 10_000)[0].storage_id for _ in range(6)]
    # Each file is charged to its SE, so the emptiest alternates without asking anyone.
    assert placed == ["se-a", "se-b"] * 3
    assert a.info_calls == b.info_calls == 0


async def test_fill_first_uses_one_se_until_its_known_room_is_used() -> None:
    a, b = FakeSE("se-a", available=5000), FakeSE("se-b", available=5000)
    w = World(a, b, placement="fill_first")
    placed = [choose(w.ing, "temporary", 1, 2000)[0].storage_id for _ in range(4)]
    assert placed == ["se-a", "se-a", "se-b", "se-b"]
    with pytest.raises(StorageFull):
        choose(w.ing, "temporary", 1, 2000)


async def test_refresh_replaces_figures_and_skips_what_an_se_says() -> None:
    a, b = FakeSE("se-a", available=1000), FakeSE("se-b", available=5000)
    w = World(a, b)
    assert choose(w.ing, "temporary", 1, 10)[0].storage_id == "se-b"
    a.available, b.available = 90_000, 50_000
    await w.capacity.refresh()
    assert (a.info_calls, b.info_calls) == (1, 1)
    assert choose(w.ing, "temporary", 1, 10)[0].storage_id == "se-a"
    # Maintenance, a mode change and silence all take an SE out until it says otherwise.
    a.status = "maintenance"
    b.mode = "rw"
    await w.capacity.refresh()
    with pytest.raises(NoStorageAvailable):
        choose(w.ing, "temporary", 1, 10)
    a.status, b.mode, b.reachable = "online", "edit", False
    await w.capacity.refresh()
    assert [choose(w.ing, "temporary", 1, 10)[0].storage_id for _ in range(2)] == ["se-a"] * 2
    b.reachable, b.available = True, 200_000
    await w.capacity.refresh()
    assert choose(w.ing, "temporary", 1, 10)[0].storage_id == "se-b"


async def test_background_refresh_runs_when_asked() -> None:
    a = FakeSE("se-a")
    w = World(a)
    await w.capacity.start()
    try:
        assert w.capacity.refreshes == 1
        w.capacity.refresh_soon()
        for _ in range(200):
            if w.capacity.refreshes >= 2:
                break
            await asyncio.sleep(0.05)
        assert w.capacity.refreshes >= 2
        assert a.info_calls >= 2
    finally:
        await w.capacity.stop()


async def test_a_507_marks_the_se_full_and_the_file_goes_to_the_next() -> None:
    # The registry's figures say se-a has more room; it has none.
    a = FakeSE("se-a", available=900_000, refuse_room=True)
    b = FakeSE("se-b", available=500_000)
    w = World(a, b)
    principal = Principal("alice", "user", "alice", frozenset({"files:write"}), token="t")
    fields = IngestFields(filename="f.bin")
    stored = await store(
        w.ing,
        principal,
        Incoming(fields, "application/octet-stream", length=9, size_hint=9),
        _chunks(b"abc", b"def", b"ghi"),
    )
    assert stored.storage_element_id == "se-b"
    assert b.received == [b"abcdefghi"]  # the whole body, sent again from its start
    assert a.received == []
    # se-a stays out until its /info says it has room again.
    assert choose(w.ing, "temporary", 1, 9)[0].storage_id == "se-b"
    assert a.info_calls == 0


async def test_507_after_more_than_the_retry_buffer_is_the_answer() -> None:
    a = FakeSE("se-a", available=900_000, refuse_room=True)
    b = FakeSE("se-b", available=500_000)
    w = World(a, b, retry_buffer_bytes=4)
    source = Replay(_chunks(b"abc", b"def", b"ghi"), 4)
    with pytest.raises(Relayed) as caught:
        await fan_out(w.ing, [w.ref("se-a")], source, _upload())
    assert caught.value.status == 507
    assert b.received == []


async def test_all_full_after_refusals_is_507() -> None:
    a = FakeSE("se-a", refuse_room=True)
    b = FakeSE("se-b", refuse_room=True)
    w = World(a, b)
    principal = Principal("alice", "user", "alice", frozenset({"files:write"}), token="t")
    with pytest.raises(StorageFull):
        await store(
            w.ing,
            principal,
            Incoming(IngestFields(filename="f"), "application/octet-stream", length=3),
            _chunks(b"abc"),
        )


async def test_unreachable_se_is_skipped_until_it_answers_info() -> None:
    a = FakeSE("se-a", available=900_000, reachable=False)
    b = FakeSE("se-b", available=500_000)
    w = World(a, b)
    with pytest.raises(TryElsewhere) as caught:
        await fan_out(w.ing, [w.ref("se-a")], Replay(_chunks(b"x"), 0), _upload())
    assert [se.storage_id for se in caught.value.ses] == ["se-a"]
    assert choose(w.ing, "temporary", 1, 1)[0].storage_id == "se-b"
    a.reachable = True
    await w.capacity.refresh()
    assert choose(w.ing, "temporary", 1, 1)[0].storage_id == "se-a"


async def test_replay_sends_the_kept_part_then_the_rest() -> None:
    source = Replay(_chunks(b"ab", b"cd", b"ef"), 4)
    first = source.chunks()
    assert [await anext(first), await anext(first)] == [b"ab", b"cd"]
    assert source.replayable
    assert [c async for c in source.chunks()] == [b"ab", b"cd", b"ef"]
    assert not source.replayable  # 6 bytes read, 4 kept at most


async def test_a_small_body_of_unknown_length_reaches_the_se_with_its_length() -> None:
    a = FakeSE("se-a")
    w = World(a, retry_buffer_bytes=64)
    principal = Principal("alice", "user", "alice", frozenset({"files:write"}), token="t")
    small = await store(
        w.ing,
        principal,
        Incoming(IngestFields(filename="s"), "application/octet-stream"),  # multipart part
        _chunks(b"abc", b"defg"),
    )
    assert small.size == 7
    big = await store(
        w.ing,
        principal,
        Incoming(IngestFields(filename="b"), "application/octet-stream"),
        _chunks(*([b"x" * 40] * 5)),
    )
    assert big.size == 200
    assert a.lengths == ["7", None]  # past the read-ahead limit: streamed (chunked)
    assert a.received == [b"abcdefg", b"x" * 200]
