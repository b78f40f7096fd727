"""Previews end to end with real processes (issue 16): files uploaded through the
ingester get their previews from a running worker (preview.scan → preview.make on its
own queue → the SEs' preview API → the catalog), served by the query module with ETag,
Cache-Control and 304, also through a signed link; a decompression bomb and a corrupt
file are recorded failed once and never queued again, and answer 404 NO_PREVIEW; the
originals stay byte-identical and downloadable; a backfill job covers an old file the
scan does not look at."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from artstore.jobs.queue import libpq_url
from tests.support.jobs import QUIET_SCHEDULES, wait_for
from tests.support.jobs import defer as defer_run
from tests.support.system import System, system_of_its_own, wait_ready

pytestmark = pytest.mark.process

RED, BLUE = (220, 0, 0), (0, 0, 220)


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
    exif[0x0112] = 6
    return _save(_halves(1200, 600), "JPEG", exif=exif.tobytes())


def _bomb() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 4096))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


class Stack:
    def __init__(self, system: System) -> None:
        self.system = system
        self.a = system.add_se("rw")
        self.b = system.add_se("rw")
        self.ingester = system.start_ingester()
        self.query = system.start_query(QM_REGISTRY_POLL_INTERVAL="1")
        wait_ready(self.query)
        self.token = system.user_token(["user"])

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def upload(self, name: str, data: bytes, content_type: str) -> str:
        r = httpx.put(
            f"{self.ingester.url}/api/v1/files/upload",
            params={"filename": name, "retention_policy": "permanent"},
            content=data,
            headers={**self.auth(), "Content-Type": content_type},
            timeout=60,
        )
        assert r.status_code in (200, 201), r.text
        return str(r.json()["file_id"])

    def get(self, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.auth(), **kw.pop("headers", {})}
        return httpx.get(f"{self.query.url}{path}", headers=headers, timeout=60, **kw)

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq_url(self.system.db.url)) as conn:
            cur = conn.execute(query, args)
            return list(cur.fetchall()) if cur.description else []

    def make_runs(self, fid: str) -> list[tuple[str, str | None]]:
        return [
            (str(s), e)
            for s, e in self.sql(
                "SELECT state, error FROM jobs.runs WHERE kind = 'preview.make' AND target = %s",
                fid,
            )
        ]

    def has_previews(self, fid: str) -> Callable[[], bool]:
        return lambda: self.previews(fid) == [256, 1024]

    def failed_once(self, fid: str) -> Callable[[], bool]:
        return lambda: [s for s, _ in self.make_runs(fid)] == ["failed"]

    def previews(self, fid: str) -> list[int]:
        r = self.get(f"/api/v1/files/{fid}")
        assert r.status_code == 200, r.text
        return list(r.json()["previews"])


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with system_of_its_own(request, tmp_path_factory, "previews") as sys_:
        yield Stack(sys_)


def test_uploads_get_previews_served_by_the_query_and_bad_files_fail_once(
    stack: Stack,
) -> None:
    pdf = _save(_halves(1200, 600), "PDF", resolution=72.0)
    files = {
        "photo": (_rotated_jpeg(), "image/jpeg"),
        "doc": (pdf, "application/pdf"),
        "bomb": (_bomb(), "image/png"),
        "corrupt": (b"\xff\xd8\xff\xe0" + b"\x00garbage" * 100, "image/jpeg"),
        "zip": (b"PK\x03\x04" + b"\0" * 100, "application/zip"),
    }
    ids = {name: stack.upload(f"{name}.bin", data, ct) for name, (data, ct) in files.items()}
    # an old file (before previews existed): only the backfill looks at it
    old = stack.upload("old.png", _save(_halves(800, 400), "PNG"), "image/png")
    stack.sql(
        "UPDATE catalog.files SET uploaded_at = now() - interval '30 days' WHERE file_id = %s",
        old,
    )
    # Before any worker: previewable files are pending, the zip never gets one.
    assert stack.get(f"/api/v1/files/{ids['photo']}/preview").status_code == 202
    r = stack.get(f"/api/v1/files/{ids['zip']}/preview")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NO_PREVIEW"

    stack.system.start_worker(**QUIET_SCHEDULES, WK_PREVIEW_SCAN_SECONDS="1")
    for name in ("photo", "doc"):
        wait_for(f"previews of {name}", stack.has_previews(ids[name]))
    for name in ("bomb", "corrupt"):
        wait_for(f"{name} failed", stack.failed_once(ids[name]))

    # The query serves the previews: decoded, oriented, cached, conditional.
    r = stack.get(f"/api/v1/files/{ids['photo']}/preview", params={"size": 256})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["cache-control"] == "private, max-age=86400"
    etag = r.headers["etag"]
    im = Image.open(io.BytesIO(r.content))
    assert im.format == "WEBP" and im.size == (128, 256)  # EXIF orientation 6 applied
    r304 = stack.get(
        f"/api/v1/files/{ids['photo']}/preview",
        params={"size": 256},
        headers={"If-None-Match": etag},
    )
    assert r304.status_code == 304 and r304.headers["etag"] == etag and not r304.content
    big = stack.get(f"/api/v1/files/{ids['photo']}/preview", params={"size": 1024})
    assert big.status_code == 200 and Image.open(io.BytesIO(big.content)).size == (512, 1024)
    doc = stack.get(f"/api/v1/files/{ids['doc']}/preview", params={"size": 256})
    assert doc.status_code == 200 and Image.open(io.BytesIO(doc.content)).size == (256, 128)
    assert stack.get(f"/api/v1/files/{ids['doc']}/preview", params={"size": 300}).status_code in (
        400,
        422,
    )
    assert httpx.get(f"{stack.query.url}/api/v1/files/{ids['doc']}/preview").status_code == 401
    reader = stack.system.admin.sa_token(["files:write"])
    r = httpx.get(
        f"{stack.query.url}/api/v1/files/{ids['doc']}/preview",
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert r.status_code == 403

    # Through a signed link, without a bearer token.
    link = httpx.post(
        f"{stack.query.url}/api/v1/files/{ids['photo']}/link", headers=stack.auth(), json={}
    ).json()["url"]
    r = httpx.get(f"{link}/preview", params={"size": 256}, timeout=30)
    assert (
        r.status_code == 200
        and r.content
        == stack.get(f"/api/v1/files/{ids['photo']}/preview", params={"size": 256}).content
    )

    # The bomb and the corrupt file: failed once with the reason, never queued again.
    time.sleep(3)  # three more scans
    for name in ("bomb", "corrupt"):
        runs = stack.make_runs(ids[name])
        assert [s for s, _ in runs] == ["failed"], runs
        assert "PreviewRefused" in (runs[0][1] or "")
        r = stack.get(f"/api/v1/files/{ids[name]}/preview")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NO_PREVIEW"
    assert stack.make_runs(ids["zip"]) == []  # never even queued
    assert stack.make_runs(old) == []

    # Originals: byte-identical, downloadable, same checksum.
    for name, (data, _) in files.items():
        r = stack.get(f"/api/v1/files/{ids[name]}/download")
        assert r.status_code == 200 and r.content == data, name
        meta = stack.get(f"/api/v1/files/{ids[name]}").json()
        assert meta["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()

    # The backfill covers the old file; a second backfill queues nothing more.
    defer_run(stack.system.db.url, "preview.backfill")
    wait_for("previews of the old file", lambda: stack.previews(old) == [256, 1024])
    assert [s for s, _ in stack.make_runs(old)] == ["succeeded"]
    defer_run(stack.system.db.url, "preview.backfill")
    wait_for(
        "second backfill ended",
        lambda: (
            [
                s
                for (s,) in stack.sql(
                    "SELECT state FROM jobs.runs WHERE kind = 'preview.backfill' ORDER BY id"
                )
            ]
            == ["succeeded", "succeeded"]
        ),
    )
    assert [s for s, _ in stack.make_runs(old)] == ["succeeded"]
    for name in ("photo", "doc"):
        assert [s for s, _ in stack.make_runs(ids[name])] == ["succeeded"]
