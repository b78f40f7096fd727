"""Maintenance in constant memory (issue 19), in-process on each backend (local disk,
S3 on SeaweedFS): the folder-by-folder walk, reconcile's catalog part chunk by chunk
(chunk size 2) with its bounded issues list, and the scrubber resuming in the middle
of a folder."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from artstore.common.db import make_engine
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.backends.local import LocalBackend
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.layout import ATTR_SUFFIX, hour_folder, preview_path, storage_name
from artstore.storage_element.maintenance.reconcile import reconcile
from artstore.storage_element.maintenance.scrub import scrub_pass
from artstore.storage_element.maintenance.walk import copies
from artstore.storage_element.settings import SESettings
from artstore.storage_element.state import SEState
from tests.support.database import TestDatabase
from tests.support.se import SEBackend

GiB = 1024**3
START = datetime(2026, 3, 4, 5, tzinfo=UTC)


def _settings(tmp: Path, se_backend: SEBackend, **kw: Any) -> SESettings:
    values: dict[str, Any] = {
        "id": f"se-walk-{uuid.uuid4().hex[:8]}",
        "mode": "rw",
        "data_dir": tmp,
        "max_capacity": 100 * GiB,
        "reserve_bytes": 0,
        "orphan_grace": 0,
        **kw,
    }
    if se_backend.name == "s3":
        assert se_backend.server is not None
        env = se_backend.server.s3_env(f"walk-{uuid.uuid4().hex[:8]}/")
        values.update({k[len("SE_") :].lower(): v for k, v in env.items()})
    return SESettings.model_validate(values)


def _put(backend: Backend, rel: str, data: bytes) -> None:
    if isinstance(backend, LocalBackend):
        path = backend.layout.files_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        backend.write_sidecar(rel, data)


def _file(backend: Backend, i: int, hours: int = 0, blob: bytes | None = None) -> Attr:
    """A stored copy written by hand: ``hours`` after START, in that hour folder."""
    at = START + timedelta(hours=hours, seconds=i)
    fid = uuid.uuid4()
    data = blob if blob is not None else f"blob {i}".encode()
    path = f"{hour_folder(at)}/{storage_name(f'f{i}.bin', 'alice', at, fid)}"
    attr = Attr.model_validate(
        {
            "file_id": str(fid),
            "storage_path": path,
            "original_filename": f"f{i}.bin",
            "content_type": "application/octet-stream",
            "size": len(data),
            "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
            "uploaded_by": "alice",
            "uploaded_at": at,
            "updated_at": at,
            "version": 1,
            "status": "active",
            "retention_policy": "permanent",
            "ttl_days": None,
            "expires_at": None,
            "description": "",
            "tags": [],
            "metadata": {},
        }
    ).sealed()
    _put(backend, path, data)
    _put(backend, path + ATTR_SUFFIX, attr.encode())
    return attr


@pytest.fixture
async def node(tmp_path: Path, se_backend: SEBackend) -> AsyncIterator[SEState]:
    n = SEState(_settings(tmp_path, se_backend), None)
    n.backend.prepare()
    n.journal.open_new_segment()
    yield n
    await n.journal.close()


def test_the_walk_finds_everything_once_in_storage_path_order(node: SEState) -> None:
    backend = node.backend
    written: list[str] = []
    for h in range(5):  # five hour folders, written newest first
        for i in range(4):
            attr = _file(backend, i, hours=4 - h)
            written += [attr.storage_path, attr.storage_path + ATTR_SUFFIX]
    first = sorted(written)[0]  # a preview sidecar beside the first blob
    sidecar = preview_path(first, 256, "webp", "ab" * 32)
    _put(backend, sidecar, b"webp")
    written.append(sidecar)
    orphan = f"{hour_folder(START)}/zz_orphan.bin"
    _put(backend, orphan, b"orphan")
    written.append(orphan)

    listed = [
        f"{folder}/{name}" for folder, entries in backend.walk_folders() for name, _ in entries
    ]
    assert listed == sorted(written)  # each once, in storage-path order
    sizes = {f"{f}/{n}": s for f, e in backend.walk_folders() for n, s in e}
    assert sizes[orphan] == len(b"orphan") and sizes[sidecar] == len(b"webp")

    chunks = list(copies(backend, chunk=3))
    assert all(0 < len(c) <= 3 for c in chunks)
    paths = [c.path for chunk in chunks for c in chunk]
    stored = sorted({p for p in written if not p.endswith(ATTR_SUFFIX) and p != sidecar})
    assert paths == stored
    by_path = {c.path: c for chunk in chunks for c in chunk}
    assert by_path[first].sidecars == {sidecar: 4}  # never split from its copy
    assert by_path[orphan].attr is False and by_path[orphan].has_blob
    assert all(by_path[p].attr and by_path[p].has_blob for p in stored if p != orphan)

    # Resumed from the middle of a folder: only what sorts after it.
    middle = stored[9]
    after = [c.path for chunk in copies(backend, chunk=2, start_after=middle) for c in chunk]
    assert after == stored[10:]


@pytest.fixture
async def catalog_node(
    tmp_path: Path, se_backend: SEBackend, database: TestDatabase
) -> AsyncIterator[SEState]:
    engine = make_engine(database.url, pool_size=2)
    n = SEState(
        _settings(tmp_path, se_backend, maintenance_chunk=2, reconcile_issues_shown=2), engine
    )
    n.backend.prepare()
    n.journal.open_new_segment()
    yield n
    await n.journal.close()
    await engine.dispose()


async def _sql(database: TestDatabase, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def test_reconcile_fixes_the_catalog_chunk_by_chunk(
    catalog_node: SEState, database: TestDatabase
) -> None:
    node = catalog_node
    se = node.settings.id
    files = [_file(node.backend, i, hours=i % 3) for i in range(9)]  # 3 folders, 5 chunks
    repo = node.catalog.repo
    assert isinstance(repo, CatalogRepository)
    await repo.force_upsert(files)
    missing, stale, gone, gone_marked = files[0], files[4], files[7], files[8]
    await _sql(database, "DELETE FROM catalog.files WHERE file_id=$1", missing.file_id)
    await _sql(
        database,
        "UPDATE catalog.files SET description='wrong', meta_checksum='x' WHERE file_id=$1",
        stale.file_id,
    )
    await _sql(
        database,
        "UPDATE catalog.files SET quarantined_at=now(), quarantine_reason='r' WHERE file_id=$1",
        gone_marked.file_id,
    )
    for attr in (gone, gone_marked):  # the copies are gone; their rows are still there
        node.backend.remove_attr(attr.storage_path)
        node.backend.remove_blob(attr.storage_path)
    # An extra row pointing at another file's copy: that path does not hold its attr.
    await _sql(
        database,
        "INSERT INTO catalog.files SELECT storage_element_id, "
        "'00000000-0000-4000-8000-000000000000', schema_version, storage_path, "
        "original_filename, content_type, size, checksum, uploaded_by, uploaded_at, "
        "updated_at, version, status, retention_policy, ttl_days, expires_at, description, "
        "tags, metadata, meta_checksum FROM catalog.files WHERE file_id=$1",
        files[1].file_id,
    )
    strays = [f"{hour_folder(START)}/stray_{i}.bin" for i in range(3)]
    for stray in strays:
        _put(node.backend, stray, b"stray")

    report = await reconcile(node)

    assert report["files_checked"] == 7
    assert report["catalog"] == {
        "checked": True,
        "inserted": 1,
        "updated": 1,
        "removed": 2,  # the gone copy's row and the extra one; the marked row is kept
        "refused": 0,
        "refused_file_ids": [],
    }
    assert report["summary"] == {"orphaned_blob": 3}
    assert len(report["issues"]) == 2 and report["issues_truncated"] is True
    assert {i["path"] for i in report["issues"]} < set(strays)
    rows = await _sql(
        database, "SELECT file_id, description FROM catalog.files WHERE storage_element_id=$1", se
    )
    kept = {str(r["file_id"]): r["description"] for r in rows}
    assert set(kept) == {a.file_id for a in files[:7]} | {gone_marked.file_id}
    assert kept[stale.file_id] == ""  # rewritten as its attr says

    again = await reconcile(node)
    assert again["issues"] == [] and again["issues_truncated"] is False
    assert again["catalog"]["inserted"] == again["catalog"]["updated"] == 0
    assert again["catalog"]["removed"] == 0


async def test_scrub_resumes_in_the_middle_of_a_folder(node: SEState) -> None:
    files = sorted(
        (_file(node.backend, i, blob=f"bytes of {i}".encode()) for i in range(6)),
        key=lambda a: a.storage_path,
    )
    for bad in (files[1], files[4]):  # same size, other bytes
        _put(node.backend, bad.storage_path, bad.storage_path[-10:].encode().ljust(bad.size, b"!"))
    node.maintenance.scrub.position = files[2].storage_path  # where a last run stopped
    assert await scrub_pass(node) == 3
    assert node.maintenance.scrub.mismatches == 1
    assert not node.backend.attr_exists(files[4].storage_path)  # quarantined
    assert node.backend.attr_exists(files[1].storage_path)  # before the position: not seen
    assert node.maintenance.scrub.position == ""  # the pass ended
    assert await scrub_pass(node) == 5  # a full pass from the start
    assert not node.backend.attr_exists(files[1].storage_path)
