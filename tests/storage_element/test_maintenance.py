"""Maintenance: rebuild-index, reconcile, GC and the scrubber, on a running SE."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.se import StorageElementUnderTest

IGNORED = {"synced_at"}


def _sql(database: TestDatabase, query: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def _rows(database: TestDatabase, se_id: str) -> dict[str, dict[str, Any]]:
    rows = _sql(database, "SELECT * FROM catalog.files WHERE storage_element_id=$1", se_id)
    return {str(r["file_id"]): {k: v for k, v in r.items() if k not in IGNORED} for r in rows}


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def _populate(se: StorageElementUnderTest, n: int = 6) -> list[str]:
    ids = []
    with se.client() as c:
        for i in range(n):
            r = c.post(
                "/api/v1/files",
                content=os.urandom(1000 + i),
                params={
                    "filename": f"f{i}.bin",
                    "tags": [f"t{i}", "all"],
                    "metadata": json.dumps({"n": str(i)}),
                    "description": f"d{i}",
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["file_id"])
        c.patch(f"/api/v1/files/{ids[0]}", json={"description": "patched"}).raise_for_status()
        assert c.delete(f"/api/v1/files/{ids[1]}").status_code == 204
    return ids


def _status(se: StorageElementUnderTest) -> dict[str, Any]:
    with se.client() as c:
        r = c.get("/api/v1/maintenance/status")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_rebuild_index_reproduces_every_row(
    edit_se: StorageElementUnderTest, database: TestDatabase
) -> None:
    ids = _populate(edit_se)
    before = _rows(database, edit_se.id)
    assert len(before) == 6 and before[ids[1]]["status"] == "deleted"
    _sql(database, "DELETE FROM catalog.files WHERE storage_element_id=$1", edit_se.id)
    assert _rows(database, edit_se.id) == {}

    with edit_se.client() as c:
        r = c.post("/api/v1/maintenance/rebuild-index")
        assert r.status_code == 202 and r.json()["job_id"]
        job = r.json()["job_id"]
    _wait(lambda: _status(edit_se)["rebuild"]["state"] == "done")
    rebuild = _status(edit_se)["rebuild"]
    assert rebuild["job_id"] == job and rebuild["done"] == rebuild["total"] == 6
    assert _rows(database, edit_se.id) == before  # row by row, field by field
    with edit_se.client() as c:  # the tombstone stays a tombstone
        assert c.get(f"/api/v1/files/{ids[1]}").json()["status"] == "deleted"
        assert c.get(f"/api/v1/files/{ids[1]}/download").status_code == 410


def test_offline_rebuild_command(edit_se: StorageElementUnderTest, database: TestDatabase) -> None:
    _populate(edit_se, 4)
    before = _rows(database, edit_se.id)
    edit_se.process.stop()
    _sql(database, "DELETE FROM catalog.files WHERE storage_element_id=$1", edit_se.id)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "artstore.cli.main",
            "se",
            "rebuild-index",
            "--data-dir",
            str(edit_se.data_dir),
            "--se-id",
            edit_se.id,
            "--database-url",
            database.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **edit_se.process.env},
    )
    assert out.returncode == 0, out.stderr
    assert "4 catalog rows rebuilt" in out.stdout
    assert _rows(database, edit_se.id) == before


def test_maintenance_needs_storage_scopes(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client(scopes="files:read files:write files:delete storage:read") as c:
        for path in ("reconcile", "rebuild-index", "gc"):
            r = c.post(f"/api/v1/maintenance/{path}")
            assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
        assert c.get("/api/v1/maintenance/status").status_code == 200
    with rw_se.client(scopes="files:read") as c:
        assert c.get("/api/v1/maintenance/status").status_code == 403
    assert httpx.post(f"{rw_se.url}/api/v1/maintenance/gc").status_code == 401


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.local_only
def test_reconcile_reports_hand_made_damage_exactly(
    se_factory: SEFactory, database: TestDatabase
) -> None:
    se = se_factory("rw", SE_ORPHAN_GRACE="600")
    ids = _populate_rw(se, 8)
    attrs = {json.loads(p.read_bytes())["file_id"]: p for p in se.attrs()}
    blob = {fid: Path(str(p)[: -len(".attr.json")]) for fid, p in attrs.items()}
    flipped, truncated, no_blob, no_attr, grown = ids[:5]
    data = bytearray(blob[flipped].read_bytes())
    data[10] ^= 0xFF
    blob[flipped].write_bytes(bytes(data))  # same size, other bytes
    attrs[truncated].write_bytes(attrs[truncated].read_bytes()[:40])
    blob[no_blob].unlink()
    attrs[no_attr].unlink()
    _age(blob[no_attr], 7200)
    with open(blob[grown], "ab") as f:
        f.write(b"extra")
    hour = blob[ids[5]].parent
    (hour / "stray_old.bin").write_bytes(b"old stray")
    _age(hour / "stray_old.bin", 7200)
    (hour / "stray_young.bin").write_bytes(b"young stray")
    # Catalog drift: a missing row, a stale row, an extra row.
    _sql(
        database,
        "DELETE FROM catalog.files WHERE storage_element_id=$1 AND file_id=$2",
        se.id,
        ids[6],
    )
    _sql(
        database,
        "UPDATE catalog.files SET description='wrong', meta_checksum='x' "
        "WHERE storage_element_id=$1 AND file_id=$2",
        se.id,
        ids[7],
    )
    _sql(
        database,
        "INSERT INTO catalog.files SELECT storage_element_id, "
        "'00000000-0000-4000-8000-000000000000', schema_version, storage_path, "
        "original_filename, content_type, size, checksum, uploaded_by, uploaded_at, "
        "updated_at, version, status, retention_policy, ttl_days, expires_at, description, "
        "tags, metadata, meta_checksum FROM catalog.files WHERE storage_element_id=$1 "
        "AND file_id=$2",
        se.id,
        ids[5],
    )

    with se.client() as c:
        shallow = c.post("/api/v1/maintenance/reconcile").json()
    got = sorted(
        (i["kind"], i.get("file_id"), i["path"].rsplit("/", 1)[-1]) for i in shallow["issues"]
    )
    name = {fid: p.name for fid, p in blob.items()}
    assert got == sorted(
        [
            ("bad_attr", truncated, name[truncated]),
            ("missing_blob", no_blob, name[no_blob]),
            ("orphaned_blob", None, name[no_attr]),
            ("orphaned_blob", None, "stray_old.bin"),
            ("size_mismatch", grown, name[grown]),
        ]
    )
    assert all(i["action"] == "quarantined" for i in shallow["issues"])
    assert shallow["summary"] == {
        "bad_attr": 1,
        "missing_blob": 1,
        "orphaned_blob": 2,
        "size_mismatch": 1,
    }
    assert shallow["files_checked"] == 7  # attrs present when it ran
    assert shallow["catalog"] == {
        "checked": True,
        "inserted": 1,
        "updated": 1,
        "removed": 1,
        "refused": 0,
        "refused_file_ids": [],
    }

    with se.client() as c:
        deep = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"}).json()
        assert [(i["kind"], i["file_id"]) for i in deep["issues"]] == [
            ("checksum_mismatch", flipped)
        ]
        again = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"}).json()
        assert again["issues"] == [] and again["catalog"]["inserted"] == 0
        for fid in (flipped, no_blob, grown):
            assert c.get(f"/api/v1/files/{fid}").status_code == 404
    quarantined = sorted(p.name for p in (se.data_dir / "quarantine").rglob("*") if p.is_file())
    assert any(n.startswith("stray_old.bin") for n in quarantined)
    assert (hour / "stray_young.bin").exists()  # inside the grace window: left alone
    assert len([n for n in quarantined if name[flipped] in n]) == 3  # blob, attr and reason kept
    rows = _rows(database, se.id)
    for fid in (flipped, truncated, no_blob, grown):
        assert rows[fid]["quarantined_at"] is not None, fid
    assert rows[ids[7]]["description"] == "d7" and ids[6] in rows
    assert "00000000-0000-4000-8000-000000000000" not in rows


def _populate_rw(se: StorageElementUnderTest, n: int) -> list[str]:
    with se.client() as c:
        return [
            c.post(
                "/api/v1/files",
                content=os.urandom(2000),
                params={"filename": f"r{i}.bin", "description": f"d{i}"},
            ).json()["file_id"]
            for i in range(n)
        ]


@pytest.mark.local_only
def test_download_verifies_whole_file_and_quarantines_a_mismatch(
    rw_se: StorageElementUnderTest,
) -> None:
    fid = _populate_rw(rw_se, 1)[0]
    blob = next(iter(rw_se.blobs()))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))
    with rw_se.client() as c:
        part = c.get(f"/api/v1/files/{fid}/download", headers={"Range": "bytes=0-9"})
        assert part.status_code == 206  # a range is not verified, and not wrong here
        with pytest.raises(httpx.HTTPError):
            c.get(f"/api/v1/files/{fid}/download")  # cut short, never silently bad
        assert c.get(f"/api/v1/files/{fid}").status_code == 404
        assert c.get("/api/v1/maintenance/status").json()["download_checksum_mismatches"] == 1
    assert rw_se.blobs() == [] and any((rw_se.data_dir / "quarantine").rglob("*.bin*"))


def test_gc_on_a_controlled_clock(se_factory: SEFactory, database: TestDatabase) -> None:
    se = se_factory("edit", SE_ALLOW_CLOCK_OVERRIDE="true", SE_RECLAIM_AGE="86400")
    with se.client() as c:
        temp = c.post(
            "/api/v1/files", content=b"t" * 5000, params={"filename": "t.txt", "ttl_days": 1}
        ).json()
        gone = c.post("/api/v1/files", content=b"g" * 3000, params={"filename": "g.txt"}).json()
        keep = c.post("/api/v1/files", content=b"k" * 100, params={"filename": "k.txt"}).json()
        assert c.delete(f"/api/v1/files/{gone['file_id']}").status_code == 204
        used = httpx.get(f"{se.url}/api/v1/info").json()["capacity"]["used_bytes"]

        def gc(days: float) -> dict[str, Any]:
            at = (datetime.now(UTC) + timedelta(days=days)).isoformat()
            r = c.post("/api/v1/maintenance/gc", params={"now": at})
            assert r.status_code == 200, r.text
            return dict(r.json())

        assert gc(0) == {"expired": 0, "reclaimed": 0, "bytes_freed": 0}
        second = gc(2)  # the temporary file expires; the tombstone is past its reclaim age
        assert second["expired"] == 1 and second["reclaimed"] == 1 and second["bytes_freed"] > 3000
        assert c.get(f"/api/v1/files/{temp['file_id']}").json()["status"] == "expired"
        assert c.get(f"/api/v1/files/{temp['file_id']}/download").status_code == 410
        assert c.get(f"/api/v1/files/{gone['file_id']}").status_code == 404
        third = gc(2)  # expired "now" on GC's clock: reclaimed one reclaim age later
        assert third == {"expired": 0, "reclaimed": 0, "bytes_freed": 0}
        fourth = gc(3)
        assert fourth["reclaimed"] == 1
        assert c.get(f"/api/v1/files/{temp['file_id']}").status_code == 404
        assert c.get(f"/api/v1/files/{keep['file_id']}/download").content == b"k" * 100
        info = httpx.get(f"{se.url}/api/v1/info").json()["capacity"]
        assert info["file_count"] == 1
        # What is left is exactly the kept file: its 100-byte blob and its attr.
        assert info["used_bytes"] == 100 + sum(len(a.read_bytes()) for a in se.attrs())
        assert info["used_bytes"] < used - second["bytes_freed"]
        assert set(_rows(database, se.id)) == {keep["file_id"]}
        # A rebuild never brings a reclaimed tombstone back.
        c.post("/api/v1/maintenance/rebuild-index").raise_for_status()
        _wait(lambda: _status(se)["rebuild"]["state"] == "done")
        assert set(_rows(database, se.id)) == {keep["file_id"]}
        assert c.get(f"/api/v1/files/{gone['file_id']}").status_code == 404
        assert _status(se)["gc"]["reclaimed"] == 1


def test_gc_clock_override_is_refused_unless_enabled(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        r = c.post("/api/v1/maintenance/gc", params={"now": "2030-01-01T00:00:00Z"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.local_only
def test_scrubber_quarantines_and_resumes_after_restart(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_SCRUB_BYTES_PER_SEC="0")
    ids = _populate_rw(se, 10)
    se.process.stop()
    bad = next(p for p in se.blobs())
    data = bytearray(bad.read_bytes())
    data[0] ^= 0xFF
    bad.write_bytes(bytes(data))
    # ~2000 bytes a file at 1500 bytes/s: a pass takes over ten seconds.
    se.start(SE_SCRUB_BYTES_PER_SEC="1500", SE_SCRUB_PASS_INTERVAL="3600")
    state = se.data_dir / "scrub.json"
    _wait(lambda: state.exists() and json.loads(state.read_text())["position"] != "", 60)
    saved = json.loads(state.read_text())
    assert 0 < saved["files_checked"] < 10
    se.process.kill()
    se.start(SE_SCRUB_BYTES_PER_SEC="200000", SE_SCRUB_PASS_INTERVAL="3600")
    _wait(lambda: _status(se)["scrub"]["last_pass_at"] is not None, 60)
    scrub = _status(se)["scrub"]
    assert scrub["files_checked"] == 10  # resumed where it stopped, not from the start
    assert scrub["mismatches"] == 1
    with se.client() as c:
        statuses = [c.get(f"/api/v1/files/{fid}").status_code for fid in ids]
    assert sorted(statuses) == [200] * 9 + [404]
