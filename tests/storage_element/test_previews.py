"""Preview sidecars on the SE (issue 16): the HTTP API, durability and lifecycle.

Every test runs on local disk and on S3 (SeaweedFS): PUT/GET/DELETE, the refusals,
modes, delete + GC, rebuild-index, reconcile (orphans removed, named ones kept, a
missing one dropped), capacity, and the original left byte-identical.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from PIL import Image

from artstore.common.errors import Forbidden
from artstore.common.se_client import StorageElementClient, bearer
from artstore.common.se_client_errors import Relayed
from artstore.storage_element.attr.model import Attr, PreviewRef, decode
from artstore.storage_element.files.previews import looks_like
from artstore.storage_element.layout import preview_owner, preview_path
from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.se import StorageElementUnderTest

ORIGINAL = os.urandom(64 * 1024)


def _image(fmt: str, side: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side // 2), colour).save(out, format=fmt)
    return out.getvalue()


WEBP = _image("WEBP")
WEBP_2 = _image("WEBP", colour=(10, 200, 10))
JPEG = _image("JPEG", 128)


def _rows(database: TestDatabase, se_id: str) -> dict[str, dict[str, Any]]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
        try:
            return list(
                await conn.fetch("SELECT * FROM catalog.files WHERE storage_element_id=$1", se_id)
            )
        finally:
            await conn.close()

    return {str(r["file_id"]): dict(r) for r in asyncio.run(run())}


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def _upload(c: httpx.Client, **params: Any) -> str:
    r = c.post("/api/v1/files", content=ORIGINAL, params={"filename": "photo.jpg", **params})
    assert r.status_code == 201, r.text
    return str(r.json()["file_id"])


def _put(c: httpx.Client, file_id: str, size: int, data: bytes, ctype: str) -> httpx.Response:
    return c.put(
        f"/api/v1/files/{file_id}/previews/{size}", content=data, headers={"Content-Type": ctype}
    )


def _used(se: StorageElementUnderTest) -> int:
    return int(httpx.get(f"{se.url}/api/v1/info").json()["capacity"]["used_bytes"])


def _assert_original(c: httpx.Client, file_id: str) -> None:
    meta = c.get(f"/api/v1/files/{file_id}").json()
    assert meta["checksum"] == "sha256:" + hashlib.sha256(ORIGINAL).hexdigest()
    body = c.get(f"/api/v1/files/{file_id}/download")
    assert body.status_code == 200 and body.content == ORIGINAL


def _code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


# -- units: naming, magic bytes, the attr field ------------------------------------------


def test_sidecar_names_parse_back_and_never_look_like_a_blob() -> None:
    sp = "2026/12/03/13/photo_alice_20261203T130000_0123abcd.jpg"
    name = preview_path(sp, 256, "webp", "ab" * 32)
    assert name == f"{sp}.preview-256-{'ab' * 8}.webp"
    assert preview_owner(name) == (sp, 256)
    assert preview_owner(preview_path(sp, 4096, "jpeg", "0" * 64)) == (sp, 4096)
    assert preview_owner(sp) is None and preview_owner(sp + ".attr.json") is None
    assert len(name.rsplit("/", 1)[1].encode()) <= 200 + 35


def test_magic_bytes() -> None:
    assert looks_like("webp", WEBP) and looks_like("jpeg", JPEG)
    assert not looks_like("webp", JPEG) and not looks_like("jpeg", WEBP)
    assert not looks_like("webp", b"RIFF") and not looks_like("jpeg", b"")
    assert not looks_like("jpeg", _image("PNG"))


def test_an_attr_without_previews_keeps_its_bytes_and_checksum() -> None:
    now = datetime.now(UTC)
    attr = Attr(
        file_id="0123abcd-0000-4000-8000-000000000000",
        storage_path="2026/12/03/13/x_alice_20261203T130000_0123abcd.bin",
        original_filename="x.bin",
        content_type="application/octet-stream",
        size=1,
        checksum="sha256:" + "0" * 64,
        uploaded_by="alice",
        uploaded_at=now,
        updated_at=now,
        version=1,
        status="active",
        retention_policy="permanent",
        ttl_days=None,
        expires_at=None,
        description="",
        tags=[],
        metadata={},
    )
    raw = attr.encode()
    assert b"previews" not in raw and decode(raw).previews is None
    ref = PreviewRef(size=256, format="webp", bytes=10, sha256="a" * 64)
    with_preview = attr.model_copy(update={"previews": [ref]})
    back = decode(with_preview.encode())
    assert back.preview_sizes() == [256] and back.preview(256) == ref
    assert back.meta_checksum != decode(raw).meta_checksum


# -- the API -------------------------------------------------------------------------------


def test_put_get_replace_delete_roundtrip(
    rw_se: StorageElementUnderTest, database: TestDatabase
) -> None:
    with rw_se.client() as c:
        file_id = _upload(c)
        attr_before = rw_se.attrs()[0].read_bytes()
        blob_before = rw_se.blobs()[0].read_bytes()
        used = _used(rw_se)

        r = _put(c, file_id, 256, WEBP, "image/webp")
        assert r.status_code == 201, r.text
        sha = hashlib.sha256(WEBP).hexdigest()
        assert r.json() == {
            "file_id": file_id, "size": 256, "format": "webp", "bytes": len(WEBP), "sha256": sha,
        }  # fmt: skip
        again = _put(c, file_id, 256, WEBP, "image/webp")  # idempotent
        assert again.status_code == 200 and again.json() == r.json()

        got = c.get(f"/api/v1/files/{file_id}/previews/256")
        assert got.status_code == 200 and got.content == WEBP
        assert got.headers["content-type"] == "image/webp"
        assert got.headers["etag"] == f'"{sha}"'
        assert int(got.headers["content-length"]) == len(WEBP)
        cached = c.get(
            f"/api/v1/files/{file_id}/previews/256", headers={"If-None-Match": f'"{sha}"'}
        )
        assert cached.status_code == 304 and cached.content == b""

        assert _put(c, file_id, 1024, JPEG, "image/jpeg; q=1").status_code == 201
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["previews"] == [256, 1024] and meta["version"] == 3
        listed = c.get("/api/v1/files").json()["items"]
        assert [m["previews"] for m in listed] == [[256, 1024]]
        _wait(lambda: _rows(database, rw_se.id)[file_id]["previews"] == [256, 1024])
        assert len(rw_se.sidecars()) == 2
        attr_bytes = len(rw_se.attrs()[0].read_bytes())
        # Capacity counts the sidecars (and the attr's growth).
        assert _used(rw_se) == used + len(WEBP) + len(JPEG) + attr_bytes - len(attr_before)

        # Replacing a size: the new bytes are served, the old sidecar is gone.
        assert _put(c, file_id, 256, WEBP_2, "image/webp").status_code == 201
        assert c.get(f"/api/v1/files/{file_id}/previews/256").content == WEBP_2
        names = sorted(s.name for s in rw_se.sidecars())
        assert len(names) == 2 and any(hashlib.sha256(WEBP_2).hexdigest()[:16] in n for n in names)

        assert c.delete(f"/api/v1/files/{file_id}/previews/1024").status_code == 204
        gone = c.get(f"/api/v1/files/{file_id}/previews/1024")
        assert gone.status_code == 404 and _code(gone) == "NO_PREVIEW"
        again_gone = c.delete(f"/api/v1/files/{file_id}/previews/1024")
        assert again_gone.status_code == 404 and _code(again_gone) == "NO_PREVIEW"
        assert len(rw_se.sidecars()) == 1
        assert c.get(f"/api/v1/files/{file_id}").json()["previews"] == [256]
        _wait(lambda: _rows(database, rw_se.id)[file_id]["previews"] == [256])
        attr_bytes = len(rw_se.attrs()[0].read_bytes())
        assert _used(rw_se) == used + len(WEBP_2) + attr_bytes - len(attr_before)

        # The original never changed.
        assert rw_se.blobs()[0].read_bytes() == blob_before
        _assert_original(c, file_id)


def test_refusals(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_PREVIEW_MAX_BYTES="2048")
    with se.client() as c:
        file_id = _upload(c)
        url = f"/api/v1/files/{file_id}/previews/256"
        assert _put(c, file_id, 256, WEBP, "image/webp").status_code == 201

        anonymous = httpx.put(
            f"{se.url}{url}", content=WEBP, headers={"Content-Type": "image/webp"}
        )
        assert anonymous.status_code == 401
        with se.client(scopes="files:read files:write files:delete") as user:
            r = _put(user, file_id, 256, WEBP, "image/webp")
            assert r.status_code == 403, r.text
            assert user.delete(url).status_code == 403
            assert user.get(url).content == WEBP  # reading is a download's right
        with se.client(scopes="storage:write") as operator:
            assert operator.get(url).status_code == 403  # no files:read

        r = _put(c, file_id, 256, WEBP, "image/png")
        assert r.status_code == 415 and _code(r) == "UNSUPPORTED_MEDIA_TYPE"
        r = c.put(url, content=WEBP)  # no Content-Type
        assert r.status_code == 415
        r = _put(c, file_id, 256, WEBP + os.urandom(4096), "image/webp")
        assert r.status_code == 413 and _code(r) == "FILE_TOO_LARGE"

        def streamed() -> Any:  # no Content-Length: cut off while reading
            for _ in range(8):
                yield b"RIFF" + os.urandom(508)

        r = c.put(url, content=streamed(), headers={"Content-Type": "image/webp"})
        assert r.status_code == 413
        for bad in ("15", "4097", "0", "-1", "abc", "99999999999999999999999"):
            r = _put(c, file_id, bad, WEBP, "image/webp")  # type: ignore[arg-type]
            assert r.status_code in (400, 422) and "error" in r.json(), (bad, r.text)
        r = _put(c, file_id, 256, b"not an image at all", "image/webp")
        assert r.status_code == 400 and _code(r) == "VALIDATION_ERROR"
        r = _put(c, file_id, 256, WEBP, "image/jpeg")  # says JPEG, is WebP
        assert r.status_code == 400
        r = _put(c, file_id, 256, b"", "image/jpeg")
        assert r.status_code == 400
        unknown = "0123abcd-0000-4000-8000-000000000000"
        r = _put(c, unknown, 256, WEBP, "image/webp")
        assert r.status_code == 404 and _code(r) == "NOT_FOUND"
        assert c.get(f"/api/v1/files/{unknown}/previews/256").status_code == 404
        r = c.get(f"/api/v1/files/{file_id}/previews/512")
        assert r.status_code == 404 and _code(r) == "NO_PREVIEW"
        r = c.get("/api/v1/files/not-a-uuid/previews/256")
        assert r.status_code in (400, 422)
        # Nothing refused left anything behind, and the first preview is intact.
        assert len(se.sidecars()) == 1 and c.get(url).content == WEBP
        assert se.tmp_entries() == []
        _assert_original(c, file_id)


def test_at_most_eight_sizes(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        file_id = _upload(c)
        for size in range(16, 16 + 8):
            assert _put(c, file_id, size, WEBP, "image/webp").status_code == 201
        r = _put(c, file_id, 100, WEBP, "image/webp")
        assert r.status_code == 409 and _code(r) == "CONFLICT"
        assert _put(c, file_id, 16, JPEG, "image/jpeg").status_code == 201  # replacing is fine
        assert len(rw_se.attrs()[0].read_bytes()) <= 4096
        assert len(rw_se.sidecars()) == 8


def test_read_only_modes_refuse_writes_and_still_serve(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        file_id = _upload(c)
        assert _put(c, file_id, 256, WEBP, "image/webp").status_code == 201
        r = c.post("/api/v1/mode/transition", json={"target_mode": "ro"})
        assert r.status_code == 200, r.text
        r = _put(c, file_id, 1024, JPEG, "image/jpeg")
        assert r.status_code == 409 and _code(r) == "MODE_NOT_ALLOWED"
        r = c.delete(f"/api/v1/files/{file_id}/previews/256")
        assert r.status_code == 409 and _code(r) == "MODE_NOT_ALLOWED"
        assert c.get(f"/api/v1/files/{file_id}/previews/256").content == WEBP
        assert c.post("/api/v1/mode/transition", json={"target_mode": "ar"}).status_code == 200
        r = c.get(f"/api/v1/files/{file_id}/previews/256")
        assert r.status_code == 409 and _code(r) == "MODE_NOT_ALLOWED"  # as a download
        assert _put(c, file_id, 1024, JPEG, "image/jpeg").status_code == 409


def test_delete_and_gc_remove_the_sidecars(se_factory: SEFactory, database: TestDatabase) -> None:
    se = se_factory("edit", SE_ALLOW_CLOCK_OVERRIDE="true", SE_RECLAIM_AGE="3600")
    with se.client() as c:
        keep, gone, temp = _upload(c), _upload(c), _upload(c, ttl_days=1)
        for fid in (keep, gone, temp):
            assert _put(c, fid, 256, WEBP, "image/webp").status_code == 201
            assert _put(c, fid, 1024, JPEG, "image/jpeg").status_code == 201
        assert len(se.sidecars()) == 6
        used = _used(se)

        # Delete: the tombstone names no previews and their sidecars go at once.
        assert c.delete(f"/api/v1/files/{gone}").status_code == 204
        r = c.get(f"/api/v1/files/{gone}/previews/256")
        assert r.status_code == 410  # a tombstone's preview is gone with it
        assert _put(c, gone, 512, WEBP, "image/webp").status_code == 410
        assert c.get(f"/api/v1/files/{gone}").json()["previews"] == []
        assert len(se.sidecars()) == 4
        assert _used(se) < used - len(WEBP) - len(JPEG) + 200  # the attr grew a little

        def gc(days: float) -> dict[str, Any]:
            at = (datetime.now(UTC) + timedelta(days=days)).isoformat()
            r = c.post("/api/v1/maintenance/gc", params={"now": at})
            assert r.status_code == 200, r.text
            return dict(r.json())

        # GC: the tombstone is reclaimed; the temporary file expires (previews kept
        # until its reclaim: an expired copy is not served, but not gone either).
        first = gc(1)
        assert first["reclaimed"] == 1 and first["expired"] == 1, first
        assert c.get(f"/api/v1/files/{gone}").status_code == 404
        assert len(se.sidecars()) == 4
        before = _used(se)
        second = gc(2)  # the expired file is reclaimed with its sidecars
        assert second["reclaimed"] == 1, second
        assert second["bytes_freed"] >= len(ORIGINAL) + len(WEBP) + len(JPEG)
        assert c.get(f"/api/v1/files/{temp}").status_code == 404
        left = sorted(s.name for s in se.sidecars())
        (blob,) = se.blobs()
        assert len(left) == 2 and all(n.startswith(blob.name) for n in left)
        assert _used(se) == before - second["bytes_freed"]
        assert c.get(f"/api/v1/files/{keep}/previews/1024").content == JPEG
        assert set(_rows(database, se.id)) == {keep}


def test_rebuild_index_restores_previews_from_disk(
    rw_se: StorageElementUnderTest, database: TestDatabase
) -> None:
    with rw_se.client() as c:
        with_previews, plain = _upload(c), _upload(c)
        assert _put(c, with_previews, 1024, JPEG, "image/jpeg").status_code == 201
        assert _put(c, with_previews, 256, WEBP, "image/webp").status_code == 201
        _wait(lambda: _rows(database, rw_se.id)[with_previews]["previews"] == [256, 1024])

        async def wipe() -> None:
            conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
            try:
                await conn.execute(
                    "DELETE FROM catalog.files WHERE storage_element_id=$1", rw_se.id
                )
            finally:
                await conn.close()

        asyncio.run(wipe())
        assert c.post("/api/v1/maintenance/rebuild-index").status_code == 202

        def done() -> bool:
            status = c.get("/api/v1/maintenance/status").json()
            return bool(status["rebuild"]["state"] == "done")

        _wait(done)
        rows = _rows(database, rw_se.id)
        assert rows[with_previews]["previews"] == [256, 1024]
        assert rows[plain]["previews"] == []
        assert c.get(f"/api/v1/files/{with_previews}/previews/256").content == WEBP


def test_reconcile_removes_orphans_keeps_named_and_drops_missing(
    rw_se: StorageElementUnderTest, database: TestDatabase
) -> None:
    se = rw_se
    with se.client() as c:
        first, second = _upload(c), _upload(c)
        assert _put(c, first, 256, WEBP, "image/webp").status_code == 201
        assert _put(c, second, 256, WEBP, "image/webp").status_code == 201
        assert _put(c, second, 1024, JPEG, "image/jpeg").status_code == 201
        attrs = {decode(a.read_bytes()).file_id: decode(a.read_bytes()) for a in se.attrs()}
        storage_path = attrs[first].storage_path
        # An orphan: a sidecar of the first file that its attr does not name.
        orphan = preview_path(storage_path, 512, "webp", hashlib.sha256(b"x").hexdigest())
        se.put_object(orphan, WEBP_2)
        # A copy gone without its sidecar: an orphan too (no attr at all).
        stray = preview_path(
            storage_path.replace(storage_path[-12:-4], "ffffffff"), 256, "jpeg", "1" * 64
        )
        se.put_object(stray, JPEG)
        # A named sidecar removed behind the SE's back: its entry is dropped.
        missing = [s for s in se.sidecars() if "preview-1024-" in s.name]
        assert len(missing) == 1
        se.remove_object(se.relative(missing[0]))
        second_attr = next(a for a in se.attrs() if decode(a.read_bytes()).file_id == second)
        attr_before = len(second_attr.read_bytes())
        se.restart()  # its space counters from a walk of what is stored now
        used = _used(se)

        r = c.post("/api/v1/maintenance/reconcile")
        assert r.status_code == 200, r.text
        report = r.json()
        kinds = sorted((i["kind"], i["action"]) for i in report["issues"])
        assert kinds == [
            ("missing_preview", "dropped_from_attr"),
            ("orphaned_preview", "removed"),
            ("orphaned_preview", "removed"),
        ], report
        assert {i["path"] for i in report["issues"] if i["kind"] == "orphaned_preview"} == {
            orphan,
            stray,
        }
        # Nothing quarantined, both files whole, the named previews still served.
        assert "quarantined" not in {i["action"] for i in report["issues"]}
        for fid in (first, second):
            _assert_original(c, fid)
            assert c.get(f"/api/v1/files/{fid}/previews/256").content == WEBP
        assert c.get(f"/api/v1/files/{second}").json()["previews"] == [256]
        r = c.get(f"/api/v1/files/{second}/previews/1024")
        assert r.status_code == 404 and _code(r) == "NO_PREVIEW"
        _wait(lambda: _rows(database, se.id)[second]["previews"] == [256])
        assert len(se.sidecars()) == 2
        # The orphans' bytes are freed; the attr shrank by the dropped entry.
        attr_after = len(second_attr.read_bytes())
        assert attr_after < attr_before
        assert _used(se) == used - len(WEBP_2) - len(JPEG) - (attr_before - attr_after)
        again = c.post("/api/v1/maintenance/reconcile").json()
        assert again["issues"] == [], again


def test_a_missing_sidecar_is_no_preview(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        file_id = _upload(c)
        assert _put(c, file_id, 256, WEBP, "image/webp").status_code == 201
        (sidecar,) = rw_se.sidecars()
        rw_se.put_object(rw_se.relative(sidecar), WEBP_2)  # damaged: other bytes
        r = c.get(f"/api/v1/files/{file_id}/previews/256")
        assert r.status_code == 404 and _code(r) == "NO_PREVIEW"
        rw_se.remove_object(rw_se.relative(sidecar))
        r = c.get(f"/api/v1/files/{file_id}/previews/256")
        assert r.status_code == 404 and _code(r) == "NO_PREVIEW"
        # The worker makes it again: the same bytes are stored anew.
        assert _put(c, file_id, 256, WEBP, "image/webp").status_code == 201
        assert c.get(f"/api/v1/files/{file_id}/previews/256").content == WEBP
        assert _put(c, file_id, 256, WEBP, "image/webp").status_code == 200


def test_json_of_metadata_names_previews(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        file_id = _upload(c)
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["previews"] == []
        assert json.loads(rw_se.attrs()[0].read_bytes()).get("previews") is None


def test_the_se_client_speaks_the_preview_api(rw_se: StorageElementUnderTest) -> None:
    """``StorageElementClient.put_preview``/``get_preview``/``delete_preview``, as the
    worker and the query module call them."""
    with rw_se.client() as c:
        file_id = _upload(c)
    auth = bearer(rw_se.issuer.token("files:read storage:write", "worker"))
    user = bearer(rw_se.issuer.token("files:read files:write", "alice"))

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            se = StorageElementClient(http)
            assert await se.get_preview(rw_se.url, file_id, 256, auth) is None
            made = await se.put_preview(rw_se.url, file_id, 256, WEBP, "image/webp", auth)
            assert made["sha256"] == hashlib.sha256(WEBP).hexdigest()
            assert made["bytes"] == len(WEBP) and made["format"] == "webp"
            got = await se.get_preview(rw_se.url, file_id, 256, user)
            assert got == (WEBP, "image/webp", f'"{made["sha256"]}"')
            try:
                await se.put_preview(rw_se.url, file_id, 512, WEBP, "image/webp", user)
            except Forbidden as exc:
                assert isinstance(exc, Relayed) and exc.status == 403
            else:
                raise AssertionError("a user token stored a preview")
            try:
                await se.put_preview(rw_se.url, file_id, 512, WEBP, "image/gif", auth)
            except Relayed as exc:
                assert exc.status == 415 and exc.code == "UNSUPPORTED_MEDIA_TYPE"
            else:
                raise AssertionError("a GIF was taken")
            unknown = "0123abcd-0000-4000-8000-000000000000"
            try:
                await se.get_preview(rw_se.url, unknown, 256, auth)
            except Relayed as exc:  # the file itself is unknown: not "no preview"
                assert exc.status == 404 and exc.code == "NOT_FOUND"
            else:
                raise AssertionError("an unknown file answered")
            assert await se.delete_preview(rw_se.url, file_id, 256, auth) is True
            assert await se.delete_preview(rw_se.url, file_id, 256, auth) is False
            assert await se.get_preview(rw_se.url, file_id, 256, auth) is None

    asyncio.run(run())
