"""The preview jobs in process (job-worker previews/service.py) against a real catalog
and job history: every supported type made by the test gives the right previews (decoded
back: size, format, orientation), stored on every SE with a healthy copy; the original is
only ever read; a bomb and a corrupt file are refused; the scan and the backfill queue
exactly the files owed a preview (never one that failed or was skipped); dedupe. The SE
is a stand-in that keeps originals and previews in memory (the real SE's preview API is
exercised by tests/worker/test_previews_e2e.py)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import insert, select, text

from artstore.common.db import make_engine
from artstore.common.errors import NotFound, UpstreamUnavailable
from artstore.common.registry import StorageElementRef
from artstore.contracts.catalog import files
from artstore.contracts.jobs import runs
from artstore.jobs import repository as runs_repo
from artstore.jobs.queue import make_queue
from artstore.worker.context import JobContext
from artstore.worker.previews import service
from artstore.worker.previews.render import PreviewRefused
from artstore.worker.settings import WorkerSettings
from artstore.worker.tasks import JOBS, TASK_MODULES
from artstore.worker.tasks import previews as preview_tasks
from tests.support.database import TestDatabase

RED, BLUE = (220, 0, 0), (0, 0, 220)


# -- images made by the test ------------------------------------------------------------
def _save(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _halves(w: int, h: int) -> Image.Image:
    im = Image.new("RGB", (w, h), RED)
    im.paste(BLUE, (w // 2, 0, w, h))
    return im


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: 600x300 stored → 300x600 shown
    exif[0x010F] = "SecretCamera"
    return _save(_halves(1200, 600), "JPEG", exif=exif.tobytes())


def _png16() -> bytes:
    row = [32768] * 400 + [65535] * 800
    return _save(Image.frombytes("I;16", (1200, 300), struct.pack("<1200H", *row) * 300), "PNG")


def _gif() -> bytes:
    frames = [_halves(600, 300), Image.new("RGB", (600, 300), (0, 200, 0))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _pdf() -> bytes:
    pages = [_halves(1200, 600), Image.new("RGB", (1200, 600), (0, 200, 0))]
    return _save(pages[0], "PDF", save_all=True, append_images=pages[1:], resolution=72.0)


def _bomb() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))


# (name, content type, bytes, (w, h) of the 256 preview, colour at the top-left quarter)
TYPES: list[tuple[str, str, bytes, tuple[int, int]]] = [
    ("rotated.jpg", "image/jpeg", _rotated_jpeg(), (128, 256)),
    ("grey16.png", "image/png", _png16(), (256, 64)),
    ("animated.gif", "image/gif", _gif(), (256, 128)),
    ("cmyk.jpg", "image/jpeg", _save(Image.new("CMYK", (1000, 500), (0, 255, 255, 0)), "JPEG"),
     (256, 128)),
    ("doc.pdf", "application/pdf", _pdf(), (256, 128)),
    ("photo.webp", "image/webp", _save(_halves(1000, 500), "WEBP"), (256, 128)),
    ("scan.tif", "image/tiff", _save(_halves(1000, 500), "TIFF"), (256, 128)),
]  # fmt: skip


# Longest side of each original as made above (never enlarged: a smaller one stays so).
LONGEST = {"rotated.jpg": 1200, "grey16.png": 1200, "animated.gif": 600, "cmyk.jpg": 1000,
           "doc.pdf": 1200, "photo.webp": 1000, "scan.tif": 1000}  # fmt: skip


# -- a stand-in SE client and context -----------------------------------------------------
@dataclass
class FakeSEs:
    """Originals and previews per SE in memory; every call recorded."""

    originals: dict[tuple[str, str], bytes] = field(default_factory=dict)
    previews: dict[tuple[str, str, int], tuple[bytes, str]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    down_for_writes: set[str] = field(default_factory=set)

    async def download(
        self, se: StorageElementRef, file_id: str, auth: Any, **_: Any
    ) -> AsyncIterator[bytes]:
        self.calls.append(("download", se.storage_id, file_id))
        data = self.originals.get((se.storage_id, file_id))
        if data is None:
            raise NotFound("no such file")
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    async def put_preview(
        self, se: StorageElementRef, file_id: str, size: int, data: bytes, ct: str, auth: Any
    ) -> dict[str, Any]:
        self.calls.append(("put_preview", se.storage_id, file_id))
        if se.storage_id in self.down_for_writes:
            raise UpstreamUnavailable(f"{se.storage_id} is down")
        self.previews[(se.storage_id, file_id, size)] = (data, ct)
        return {"file_id": file_id, "size": size, "bytes": len(data)}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a preview job must not call {name} on an SE")


def _ref(storage_id: str) -> StorageElementRef:
    return StorageElementRef(
        storage_id=storage_id,
        name=storage_id,
        url=f"http://{storage_id}",
        mode="rw",
        status="online",
        backend="local",
        total_bytes=1,
        used_bytes=0,
        available_bytes=1,
        file_count=0,
    )


class Registry:
    def __init__(self, ids: list[str]) -> None:
        self.items = {i: _ref(i) for i in ids}

    def get(self, storage_id: str) -> StorageElementRef | None:
        return self.items.get(storage_id)


class Ctx(JobContext):
    async def se_headers(self, storage_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer for-{storage_id}"}


@dataclass
class World:
    db: TestDatabase
    ses: FakeSEs
    ids: list[str]
    settings: WorkerSettings

    def context(self, engine: Any, queue: Any) -> Ctx:
        return Ctx(
            settings=self.settings,
            engine=engine,
            se_client=self.ses,  # type: ignore[arg-type]
            registry=Registry(self.ids),  # type: ignore[arg-type]
            run_id=0,
            queue=queue,
            se_tokens=None,  # type: ignore[arg-type]
            admin_http=None,  # type: ignore[arg-type]
            abort_check=lambda: False,
        )


@pytest.fixture
def world(database: TestDatabase) -> World:
    s = uuid.uuid4().hex[:6]
    settings = WorkerSettings(
        DATABASE_URL=database.url, preview_sizes="256,1024", preview_max_input_bytes=2_000_000
    )
    return World(database, FakeSEs(), [f"se-pa-{s}", f"se-pb-{s}"], settings)


async def _with(world: World, fn: Any) -> Any:
    engine = make_engine(world.db.url, pool_size=2)
    queue = make_queue(world.db.url, pool_size=2)
    await queue.open_async()
    try:
        return await fn(world.context(engine, queue), engine)
    finally:
        await queue.close_async()
        await engine.dispose()


async def _put(
    engine: Any,
    world: World,
    data: bytes,
    content_type: str,
    *,
    on: list[str] | None = None,
    uploaded_at: datetime | None = None,
    previews: list[int] | None = None,
    checksum: str | None = None,
    fid: str | None = None,
) -> str:
    fid = fid or str(uuid.uuid4())
    at = uploaded_at or datetime.now(UTC)
    async with engine.begin() as conn:
        for se in on or world.ids:
            world.ses.originals[(se, fid)] = data
            await conn.execute(
                insert(files).values(
                    storage_element_id=se, file_id=fid, schema_version=1,
                    storage_path=f"x/{fid}", original_filename="f", content_type=content_type,
                    size=len(data),
                    checksum=checksum or "sha256:" + hashlib.sha256(data).hexdigest(),
                    uploaded_by="t", uploaded_at=at, updated_at=at, version=1, status="active",
                    retention_policy="permanent", description="", tags=[], metadata={},
                    meta_checksum="sha256:" + "1" * 64, previews=previews or [],
                )
            )  # fmt: skip
    return fid


def _decode(blob: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(blob))
    im.load()
    return im


def _close(pixel: Any, colour: tuple[int, int, int], tol: int = 50) -> bool:
    return all(abs(int(a) - b) <= tol for a, b in zip(pixel[:3], colour, strict=True))


# -- preview.make ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "ctype", "data", "shape"), TYPES, ids=[t[0] for t in TYPES])
async def test_every_type_gets_its_previews_on_every_copy(
    world: World, name: str, ctype: str, data: bytes, shape: tuple[int, int]
) -> None:
    async def go(ctx: Ctx, engine: Any) -> tuple[str, dict[str, Any]]:
        fid = await _put(engine, world, data, ctype)
        return fid, await service.make(ctx, fid)

    fid, summary = await _with(world, go)
    assert summary["result"] == "made" and summary["sizes"] == [256, 1024]
    assert sorted(summary["stored_on"]) == sorted(world.ids)
    for se in world.ids:
        small, ct = world.ses.previews[(se, fid, 256)]
        assert ct == "image/webp"
        im = _decode(small)
        assert im.format == "WEBP" and im.size == shape, (name, im.size)
        assert not im.getexif() and b"SecretCamera" not in small
        big = _decode(world.ses.previews[(se, fid, 1024)][0])
        assert big.format == "WEBP" and max(big.size) == min(1024, LONGEST[name])
    if name == "rotated.jpg":  # stored left red / right blue, shown top red / bottom blue
        im = _decode(world.ses.previews[(world.ids[0], fid, 256)][0])
        assert _close(im.getpixel((64, 10)), RED) and _close(im.getpixel((64, 245)), BLUE)
    if name in ("animated.gif", "doc.pdf", "photo.webp", "scan.tif"):  # first frame/page
        im = _decode(world.ses.previews[(world.ids[0], fid, 256)][0])
        assert _close(im.getpixel((10, 64)), RED) and _close(im.getpixel((245, 64)), BLUE)
    if name == "grey16.png":  # scaled to 8 bits, not clipped to white
        im = _decode(world.ses.previews[(world.ids[0], fid, 256)][0]).convert("L")
        assert abs(im.getpixel((20, 30)) - 128) <= 10  # type: ignore[operator]
    # the original was only ever read, and is unchanged
    kinds = {c[0] for c in world.ses.calls if c[2] == fid}
    assert kinds <= {"download", "put_preview"}
    assert all(world.ses.originals[(se, fid)] == data for se in world.ids)


@pytest.mark.parametrize(
    "data",
    [_bomb(), b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50, b"%PDF-1.4 not really a pdf"],
    ids=["bomb", "corrupt-jpeg", "corrupt-pdf"],
)
async def test_a_bomb_or_a_corrupt_file_is_refused_and_nothing_stored(
    world: World, data: bytes
) -> None:
    async def go(ctx: Ctx, engine: Any) -> str:
        fid = await _put(engine, world, data, "image/png")
        with pytest.raises(PreviewRefused):
            await service.make(ctx, fid)
        return fid

    fid = await _with(world, go)
    assert not world.ses.previews
    assert all(world.ses.originals[(se, fid)] == data for se in world.ids)
    # a refusal is final: no retry of preview.make, whatever fails
    assert preview_tasks.__name__ in TASK_MODULES
    assert JOBS[service.PREVIEW_MAKE].retry == 0
    assert JOBS[service.PREVIEW_MAKE].queue == service.QUEUE


async def test_skipped_files_are_not_downloaded(world: World) -> None:
    async def go(ctx: Ctx, engine: Any) -> list[dict[str, Any]]:
        big = await _put(engine, world, b"\xff\xd8\xff" + b"\0" * 2_100_000, "image/jpeg")
        zip_ = await _put(engine, world, b"PK\3\4zip", "application/zip")
        return [await service.make(ctx, big), await service.make(ctx, zip_),
                await service.make(ctx, str(uuid.uuid4()))]  # fmt: skip

    out = await _with(world, go)
    assert [o["result"] for o in out] == ["skipped"] * 3
    assert "WK_PREVIEW_MAX_INPUT_BYTES" in out[0]["reason"] and "zip" in out[1]["reason"]
    assert not world.ses.calls


async def test_a_bad_copy_is_passed_over_and_a_down_se_does_not_fail_the_job(
    world: World,
) -> None:
    data = _save(_halves(800, 400), "PNG")

    async def go(ctx: Ctx, engine: Any) -> tuple[str, dict[str, Any]]:
        fid = await _put(engine, world, data, "image/png")
        world.ses.originals[(world.ids[0], fid)] = data[:-10] + b"0123456789"  # rotten
        world.ses.down_for_writes.add(world.ids[1])
        return fid, await service.make(ctx, fid)

    fid, summary = await _with(world, go)
    assert summary["source"] == world.ids[1]
    assert summary["stored_on"] == [world.ids[0]]
    steps = sorted((f["step"], f["storage_element_id"]) for f in summary["failures"])
    assert steps == [("read", world.ids[0]), ("write", world.ids[1])]

    async def all_down(ctx: Ctx, engine: Any) -> None:
        world.ses.down_for_writes.update(world.ids)
        with pytest.raises(UpstreamUnavailable):
            await service.make(ctx, fid)

    await _with(world, all_down)


# -- scan and backfill ----------------------------------------------------------------------
async def _made_runs(engine: Any, fids: list[str]) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(runs.c.target, runs.c.state).where(
                runs.c.kind == service.PREVIEW_MAKE, runs.c.target.in_(fids)
            )
        )
        out: dict[str, int] = {}
        for target, _state in rows:
            out[target] = out.get(target, 0) + 1
        return out


async def _record(engine: Any, fid: str, state: str, summary: dict[str, Any] | None = None) -> None:
    async with engine.begin() as conn:
        run_id = await runs_repo.insert_queued(
            conn, service.PREVIEW_MAKE, args={"file_id": fid}, target=fid, state="running"
        )
        if state == "failed":
            await runs_repo.mark_failed(conn, run_id, "PreviewRefused: corrupt")
        elif state == "succeeded":
            await runs_repo.mark_succeeded(conn, run_id, summary or {})
        elif state == "cancelled":
            await runs_repo.mark_cancelled(conn, run_id, "cancelled")


async def test_scan_and_backfill_queue_exactly_the_files_owed_a_preview(world: World) -> None:
    png = _save(_halves(64, 32), "PNG")
    old = datetime.now(UTC) - timedelta(days=30)

    async def go(ctx: Ctx, engine: Any) -> None:
        new = await _put(engine, world, png, "image/png")
        new_done = await _put(engine, world, png, "image/png", previews=[256, 1024])
        new_failed = await _put(engine, world, png, "image/png")
        await _record(engine, new_failed, "failed")
        new_skipped = await _put(engine, world, png, "image/png")
        await _record(engine, new_skipped, "succeeded", {"result": "skipped"})
        new_cancelled = await _put(engine, world, png, "image/png")
        await _record(engine, new_cancelled, "cancelled")
        new_zip = await _put(engine, world, b"PK", "application/zip")
        old_none = await _put(engine, world, png, "image/png", uploaded_at=old)
        old_half = await _put(engine, world, png, "image/png", uploaded_at=old, previews=[256])
        await _record(engine, old_half, "succeeded", {"result": "made"})
        old_failed = await _put(engine, world, png, "image/png", uploaded_at=old)
        await _record(engine, old_failed, "failed")
        everyone = [new, new_done, new_failed, new_skipped, new_cancelled, new_zip, old_none,
                    old_half, old_failed]  # fmt: skip
        before = await _made_runs(engine, everyone)

        summary = await service.scan(ctx)
        after_scan = await _made_runs(engine, everyone)
        queued = {f for f in everyone if after_scan.get(f, 0) > before.get(f, 0)}
        assert queued == {new, new_cancelled}, summary
        # a second scan queues nothing: those runs are waiting
        await service.scan(ctx)
        assert await _made_runs(engine, everyone) == after_scan

        await service.backfill(ctx)
        after_backfill = await _made_runs(engine, everyone)
        queued = {f for f in everyone if after_backfill.get(f, 0) > after_scan.get(f, 0)}
        # the old file without previews, and the one missing a configured size
        assert queued == {old_none, old_half}
        await service.backfill(ctx)
        assert await _made_runs(engine, everyone) == after_backfill

    await _with(world, go)


async def test_scan_pages_through_more_files_than_a_batch(world: World) -> None:
    world.settings.preview_batch = 3
    png = _save(_halves(64, 32), "PNG")

    async def go(ctx: Ctx, engine: Any) -> None:
        fids = [await _put(engine, world, png, "image/png") for _ in range(8)]
        summary = await service.scan(ctx)
        assert summary["deferred"] >= 8
        assert set(await _made_runs(engine, fids)) == set(fids)
        async with engine.connect() as conn:
            jobs = await conn.scalar(
                text(
                    "SELECT count(*) FROM procrastinate.procrastinate_jobs "
                    "WHERE queue_name = 'previews' AND status = 'todo' AND "
                    "args->>'file_id' = ANY(:ids)"
                ),
                {"ids": fids},
            )
        assert jobs == 8

    await _with(world, go)


def test_scan_interval_setting() -> None:
    from artstore.worker.previews.settings import scan_cron

    assert scan_cron(60) == "*/1 * * * *" and scan_cron(15) == "* * * * * */15"
    assert scan_cron(600) == "*/10 * * * *" and scan_cron(0) == ""
    for bad in (7, 90, 4000):
        with pytest.raises(ValueError):
            scan_cron(bad)
    with pytest.raises(ValueError):
        WorkerSettings(preview_scan_seconds=7)


def test_asyncio_is_used() -> None:
    assert asyncio.iscoroutinefunction(service.make)
