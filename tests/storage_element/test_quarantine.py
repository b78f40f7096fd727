"""The quarantine of a running SE (local disk and S3): bytes flipped behind its back,
caught by a deep reconcile and by a download, listed with their reasons across a
restart, then purged (bytes and catalog row); modes, scopes and hostile ids."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.se import StorageElementUnderTest

Q = "/api/v1/maintenance/quarantine"


def _sql(database: TestDatabase, query: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def flip(se: StorageElementUnderTest, name_part: str) -> None:
    """Spoil the first byte of the blob whose name holds ``name_part``."""
    blob = next(b for b in se.blobs() if name_part in b.name)
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    if se.on_s3:
        assert se.backend.server is not None
        se._s3.put_object(Bucket=se.backend.server.bucket, Key=blob.key, Body=bytes(data))
    else:
        blob.write_bytes(bytes(data))


def quarantine_files(se: StorageElementUnderTest) -> list[str]:
    """Names of everything under the SE's quarantine (folder or S3 prefix)."""
    if se.on_s3:
        assert se.backend.server is not None
        pages = se._s3.get_paginator("list_objects_v2").paginate(
            Bucket=se.backend.server.bucket, Prefix=f"{se.s3_prefix}quarantine/"
        )
        return sorted(o["Key"].rsplit("/", 1)[-1] for p in pages for o in p.get("Contents", []))
    return sorted(p.name for p in (se.data_dir / "quarantine").rglob("*") if p.is_file())


def upload(se: StorageElementUnderTest, n: int) -> list[dict[str, Any]]:
    with se.client() as c:
        out = []
        for i in range(n):
            r = c.post("/api/v1/files", content=os.urandom(3000), params={"filename": f"q{i}.bin"})
            assert r.status_code == 201, r.text
            out.append(r.json())
    return out


def test_listed_across_a_restart_then_purged(se_factory: SEFactory, database: TestDatabase) -> None:
    se = se_factory("rw")
    first, second, healthy = upload(se, 3)
    for meta in (first, second):
        flip(se, meta["file_id"].replace("-", "")[:8])
    with se.client() as c:
        r = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"})
        assert r.status_code == 200, r.text
        assert {i["file_id"] for i in r.json()["issues"]} == {
            first["file_id"],
            second["file_id"],
        }
    se.restart()
    with se.client() as c:
        page = c.get(Q).json()
    assert page["total"] == 2 and len(page["items"]) == 2
    items = {i["file_id"]: i for i in page["items"]}
    for meta in (first, second):
        item = items[meta["file_id"]]
        assert item["reason"] == "checksum_mismatch"
        assert item["size"] > 3000
        assert item["path"].rsplit("/", 1)[-1].startswith("q")
    rows = _sql(
        database,
        "SELECT file_id::text AS id, quarantine_reason FROM catalog.files "
        "WHERE storage_element_id=$1 AND quarantined_at IS NOT NULL",
        se.id,
    )
    assert {r["id"] for r in rows} == set(items)

    gone = items[first["file_id"]]
    with se.client(scopes="storage:read") as c:
        assert c.delete(f"{Q}/{gone['item']}").status_code == 403
    with se.client(scopes="storage:write") as c:
        r = c.delete(f"{Q}/{gone['item']}")
        assert r.status_code == 200, r.text
        assert r.json()["bytes_freed"] == gone["size"]
        assert c.delete(f"{Q}/{gone['item']}").status_code == 404
        left = c.get(Q).json()
        assert [i["file_id"] for i in left["items"]] == [second["file_id"]]
    with se.client() as c:
        assert c.get(f"/api/v1/files/{healthy['file_id']}").status_code == 200
    assert not [n for n in quarantine_files(se) if gone["path"].rsplit("/", 1)[-1] in n]
    rows = _sql(
        database,
        "SELECT file_id::text AS id FROM catalog.files WHERE storage_element_id=$1",
        se.id,
    )
    assert {r["id"] for r in rows} == {second["file_id"], healthy["file_id"]}


def test_a_download_mismatch_is_listed_and_an_ro_se_may_purge(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    (meta,) = upload(se, 1)
    flip(se, meta["file_id"].replace("-", "")[:8])
    with se.client() as c:
        with pytest.raises(httpx.HTTPError):  # cut short: never silently bad
            c.get(f"/api/v1/files/{meta['file_id']}/download")
        (item,) = c.get(Q).json()["items"]
        assert item["file_id"] == meta["file_id"]
        assert item["reason"] == "checksum_mismatch (download)"
        assert c.post("/api/v1/mode/transition", json={"target_mode": "ro"}).status_code == 200
        assert c.delete(f"{Q}/{item['item']}").status_code == 200
        assert c.get(Q).json()["total"] == 0
    assert quarantine_files(se) == []


@pytest.mark.local_only
def test_an_entry_moved_before_reasons_were_kept_is_listed(se_factory: SEFactory) -> None:
    """Entries quarantined by an earlier release have no info record: listed with the
    file id their attr names and reason ``unknown``; purge works on them too."""
    se = se_factory("rw")
    (meta,) = upload(se, 1)
    flip(se, meta["file_id"].replace("-", "")[:8])
    with se.client() as c:
        c.post("/api/v1/maintenance/reconcile", params={"deep": "true"}).raise_for_status()
    for info in (se.data_dir / "quarantine").rglob("*.info.json"):
        info.unlink()
    with se.client() as c:
        (item,) = c.get(Q).json()["items"]
        assert (item["file_id"], item["reason"]) == (meta["file_id"], "unknown")
        assert c.delete(f"{Q}/{item['item']}").status_code == 200
    assert quarantine_files(se) == []


def test_hostile_item_ids_touch_nothing(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    (meta,) = upload(se, 1)
    flip(se, meta["file_id"].replace("-", "")[:8])
    with se.client() as c:
        c.post("/api/v1/maintenance/reconcile", params={"deep": "true"}).raise_for_status()
        before = quarantine_files(se)
        for bad in ("Li4vLi4vbW9kZS5qc29u", "..", "%2E%2E%2Fmode.json", "x" * 5000, "a=b"):
            r = c.delete(f"{Q}/{bad}")
            assert 400 <= r.status_code < 500, (bad, r.status_code)
            assert r.json()["error"]["code"] in ("VALIDATION_ERROR", "NOT_FOUND")
        assert c.get(Q).json()["total"] == 1
    assert quarantine_files(se) == before
    if not se.on_s3:
        assert (se.data_dir / "mode.json").exists()
