"""rebuild-index's streamed COPY path (issue 7), straight against the test database:
many chunks, rows already there (stale, newer, quarantined, gone), writes landing
meanwhile, bad attrs, and the online path through the SE's SQLAlchemy engine."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from artstore.common.db import make_engine
from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr
from artstore.storage_element.attr.row import ROW_COLUMNS, Row
from artstore.storage_element.backends.local import LocalBackend
from artstore.storage_element.catalog import bulk
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.layout import Layout
from artstore.storage_element.maintenance import rebuild as rebuild_mod
from tests.support.database import TestDatabase

START = datetime(2026, 1, 1, tzinfo=UTC)


def _attr(i: int, version: int = 1, **kw: Any) -> Attr:
    at = START + timedelta(minutes=7 * i, microseconds=i % 3)
    fid = uuid.UUID(int=i + 1, version=4)
    data: dict[str, Any] = {
        "file_id": str(fid),
        "storage_path": f"{at:%Y/%m/%d/%H}/f{i}_u_{at:%Y%m%dT%H%M%S}_{fid.hex[:8]}.txt",
        "original_filename": f"файл {i}.txt",
        "content_type": "text/plain",
        "size": i,
        "checksum": "sha256:" + f"{i:064x}",
        "uploaded_by": f"user{i % 5}",
        "uploaded_at": at,
        "updated_at": at + timedelta(seconds=version),
        "version": version,
        "status": ("active", "expired", "deleted")[i % 3],
        "retention_policy": "temporary" if i % 2 else "permanent",
        "ttl_days": 30 if i % 2 else None,
        "expires_at": at + timedelta(days=30) if i % 2 else None,
        "description": f"about {i}",
        "tags": [f"t{i % 4}", "all"][: i % 3],
        "metadata": {"n": str(i), "ключ": "значение"} if i % 2 else {},
    }
    data.update(kw)
    return Attr.model_validate(data).sealed()


def _write(files: Path, attr: Attr, raw: bytes | None = None) -> None:
    path = files / (attr.storage_path + ".attr.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    (files / attr.storage_path).write_bytes(b"x" * attr.size)
    path.write_bytes(attr.encode() if raw is None else raw)


def _expected(attr: Attr) -> dict[str, Any]:
    row = attr.model_dump(exclude={"bitrot"})  # the SE's own business: no catalog column
    row["uploaded_at"], row["updated_at"] = attr.uploaded_at, attr.updated_at
    row["previews"] = attr.preview_sizes()  # the catalog keeps the sizes
    return row


def _as_attr_values(record: asyncpg.Record) -> dict[str, Any]:
    row = {c: record[c] for c in ROW_COLUMNS}
    row["file_id"] = str(row["file_id"])
    row["metadata"] = json.loads(row["metadata"])
    return row


class Catalog:
    def __init__(self, url: str, se_id: str) -> None:
        self.dsn = url.replace("+asyncpg", "")
        self.url = url
        self.se_id = se_id

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn)

    async def rows(self, se_id: str | None = None) -> dict[str, asyncpg.Record]:
        conn = await self.connect()
        try:
            found = await conn.fetch(
                "SELECT *, xmin::text AS xmin FROM catalog.files WHERE storage_element_id = $1",
                se_id or self.se_id,
            )
        finally:
            await conn.close()
        return {str(r["file_id"]): r for r in found}

    async def insert(self, se_id: str, attr: Attr, quarantined: bool = False) -> None:
        values: list[Any] = [getattr(attr, c) for c in ROW_COLUMNS]
        values[ROW_COLUMNS.index("metadata")] = json.dumps(attr.metadata)
        values[ROW_COLUMNS.index("previews")] = attr.preview_sizes()
        cols = ", ".join(ROW_COLUMNS)
        marks = ", ".join(f"${i + 3}" for i in range(len(ROW_COLUMNS)))
        sql = (
            f"INSERT INTO catalog.files (storage_element_id, quarantine_reason, {cols}, "  # noqa: S608
            f"quarantined_at) VALUES ($1, $2, {marks}, CASE WHEN $2::text IS NULL THEN NULL "
            "ELSE now() END)"
        )
        conn = await self.connect()
        try:
            await conn.execute(sql, se_id, "bad" if quarantined else None, *values)
        finally:
            await conn.close()


@pytest.fixture
def catalog(database: TestDatabase) -> Catalog:
    return Catalog(database.url, f"se-rebuild-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(rebuild_mod, "CHUNK", 97)  # many chunks, a short last one
    yield


def _backend(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(Layout(tmp_path / "data", tmp_path / "wal"))
    backend.layout.files_dir.mkdir(parents=True)
    return backend


async def _offline(backend: LocalBackend, catalog: Catalog) -> tuple[int, int]:
    """(rows written, bad attrs); nothing refused."""
    result = await rebuild_mod.rebuild_offline(backend, catalog.url, catalog.se_id)
    assert result.refused == {}
    return result.written, result.bad


@pytest.mark.usefixtures("small_chunks")
async def test_rebuild_over_many_files_gives_exactly_the_attrs_rows(
    tmp_path: Path, catalog: Catalog
) -> None:
    backend = _backend(tmp_path)
    files = backend.layout.files_dir
    attrs = {a.file_id: a for a in (_attr(i) for i in range(1000))}
    for a in attrs.values():
        _write(files, a)
    # Damaged attrs: skipped and counted, no row.
    bad = [_attr(5000 + i) for i in range(5)]
    _write(files, bad[0], bad[0].encode().replace(b'"size":', b'"size":1'))  # checksum
    _write(files, bad[1], b"{not json")
    _write(files, bad[2], b"{" + b" " * ATTR_MAX_BYTES + b"}")  # over the limit
    raw = json.loads(bad[3].encode())
    raw["extra"] = "x"
    _write(files, bad[3], json.dumps(raw).encode())
    _write(files, bad[4], b"")
    (files / "2026/01/01/00/orphan_u_20260101T000000_deadbeef.bin").write_bytes(b"blob")

    written, failed = await _offline(backend, catalog)

    assert (written, failed) == (len(attrs), len(bad))
    rows = await catalog.rows()
    assert rows.keys() == attrs.keys()
    for fid, record in rows.items():
        assert _as_attr_values(record) == _expected(attrs[fid])
        assert record["quarantined_at"] is None


async def test_rebuild_replaces_what_was_there(tmp_path: Path, catalog: Catalog) -> None:
    backend = _backend(tmp_path)
    files = backend.layout.files_dir
    attrs = [_attr(i, version=2) for i in range(40)]
    for a in attrs:
        _write(files, a)
    other_se = catalog.se_id + "-b"
    # Already there: stale values, a higher version than the attr (the attr still wins:
    # it is the truth), quarantine marks, rows without an attr, another SE's row.
    await catalog.insert(catalog.se_id, _attr(0, version=2, description="stale"))
    await catalog.insert(catalog.se_id, _attr(1, version=9, description="from nowhere"))
    await catalog.insert(catalog.se_id, attrs[2], quarantined=True)
    await catalog.insert(catalog.se_id, attrs[3])  # already right
    await catalog.insert(catalog.se_id, _attr(900), quarantined=True)
    await catalog.insert(catalog.se_id, _attr(901))
    await catalog.insert(other_se, _attr(0, description="another SE"))
    before = await catalog.rows()

    written, failed = await _offline(backend, catalog)

    assert (written, failed) == (40, 0)
    rows = await catalog.rows()
    assert rows.keys() == {a.file_id for a in attrs}
    for a in attrs:
        assert _as_attr_values(rows[a.file_id]) == _expected(a)
        assert rows[a.file_id]["quarantined_at"] is None
        assert rows[a.file_id]["quarantine_reason"] is None
    # A row that already said what its attr says is not rewritten.
    assert rows[attrs[3].file_id]["xmin"] == before[attrs[3].file_id]["xmin"]
    assert rows[attrs[3].file_id]["synced_at"] == before[attrs[3].file_id]["synced_at"]
    other = await catalog.rows(other_se)
    assert [r["description"] for r in other.values()] == ["another SE"]

    # Again: nothing to change, nothing rewritten.
    assert await _offline(backend, catalog) == (40, 0)
    again = await catalog.rows()
    assert {k: r["xmin"] for k, r in again.items()} == {k: r["xmin"] for k, r in rows.items()}


@pytest.mark.usefixtures("small_chunks")
async def test_a_write_landing_meanwhile_is_kept(tmp_path: Path, catalog: Catalog) -> None:
    backend = _backend(tmp_path)
    files = backend.layout.files_dir
    attrs = [_attr(i) for i in range(300)]
    for a in attrs:
        _write(files, a)
    newer = _attr(7, version=3, description="patched while the rebuild ran")
    uploaded = _attr(7000, description="uploaded while the rebuild ran")

    async def landing(chunks: AsyncIterator[list[Row]]) -> AsyncIterator[list[Row]]:
        first = True
        async for rows in chunks:
            if first:  # the SE commits two writes after the rebuild began
                await catalog.insert(catalog.se_id, newer)
                await catalog.insert(catalog.se_id, uploaded)
                first = False
            yield rows

    conn = await catalog.connect()
    try:
        result = await rebuild_mod.rebuild_with(
            backend,
            lambda rows, refused: bulk.replace_rows(conn, catalog.se_id, landing(rows), refused),
        )
        written, failed = result.written, result.bad
    finally:
        await conn.close()

    assert (written, failed) == (300, 0)
    rows = await catalog.rows()
    assert rows.keys() == {a.file_id for a in attrs} | {uploaded.file_id}
    assert _as_attr_values(rows[newer.file_id]) == _expected(newer)  # not set back to v1
    assert _as_attr_values(rows[uploaded.file_id]) == _expected(uploaded)  # not deleted
    for a in attrs:
        if a.file_id != newer.file_id:
            assert _as_attr_values(rows[a.file_id]) == _expected(a)


async def test_a_failed_rebuild_changes_nothing(tmp_path: Path, catalog: Catalog) -> None:
    backend = _backend(tmp_path)
    for i in range(10):
        _write(backend.layout.files_dir, _attr(i, version=2))
    await catalog.insert(catalog.se_id, _attr(900))
    before = await catalog.rows()

    async def broken(chunks: AsyncIterator[list[Row]]) -> AsyncIterator[list[Row]]:
        async for rows in chunks:
            yield rows
        raise OSError("disk went away")

    conn = await catalog.connect()
    try:
        with pytest.raises(OSError, match="disk went away"):
            await rebuild_mod.rebuild_with(
                backend,
                lambda rows, refused: bulk.replace_rows(conn, catalog.se_id, broken(rows), refused),
            )
    finally:
        await conn.close()
    assert (await catalog.rows()).keys() == before.keys()


async def test_online_path_through_the_engine_twice(tmp_path: Path, catalog: Catalog) -> None:
    """The job's path: the driver connection under SQLAlchemy's pool, reused (temp tables
    and cached statements of the first run must not trouble the second)."""
    backend = _backend(tmp_path)
    attrs = [_attr(i) for i in range(25)]
    for a in attrs:
        _write(backend.layout.files_dir, a)
    engine = make_engine(catalog.url, pool_size=1)
    try:
        repo = CatalogRepository(engine, catalog.se_id)
        seen: list[tuple[int, int]] = []
        result = await rebuild_mod.rebuild(backend, repo, lambda d, t: seen.append((d, t)))
        assert (result.written, result.bad, result.refused) == (25, 0, {})
        assert seen[-1] == (25, 25)
        (backend.layout.files_dir / (attrs[0].storage_path + ".attr.json")).unlink()
        result = await rebuild_mod.rebuild(backend, repo)
        assert (result.written, result.bad, result.refused) == (24, 0, {})
        # The pooled connection is left usable, outside any transaction.
        assert await repo.get(attrs[1].file_id) == attrs[1]
    finally:
        await engine.dispose()
    rows = await catalog.rows()
    assert rows.keys() == {a.file_id for a in attrs[1:]}


@pytest.mark.usefixtures("small_chunks")
async def test_rows_postgres_refuses_are_reported_and_the_rest_indexed(
    tmp_path: Path, catalog: Catalog
) -> None:
    """Issue 11: a NUL (screened before the COPY) or a value too long for its column
    (found by the writer, halving its chunk) no longer fails the rebuild."""
    backend = _backend(tmp_path)
    files = backend.layout.files_dir
    attrs = [_attr(i) for i in range(300)]
    for a in attrs:
        _write(files, a)
    bad = {
        "nul_description": _attr(1000, description="a\x00b"),
        "nul_tag": _attr(1001, tags=["ok", "t\x00"]),
        "nul_metadata": _attr(1002, metadata={"k": "v\x00"}),
        "checksum_too_long": _attr(1003, checksum="sha256:" + "f" * 100),
    }
    for a in bad.values():
        _write(files, a)
    # The last one had a row already: it is left as it was, not deleted.
    old = _attr(1003, description="before")
    await catalog.insert(catalog.se_id, old)
    await catalog.insert(catalog.se_id, _attr(900))  # gone: deleted as before

    result = await rebuild_mod.rebuild_offline(backend, catalog.url, catalog.se_id)

    assert (result.written, result.bad) == (len(attrs), 0)
    assert result.refused == {
        bad["nul_description"].file_id: "nul_character",
        bad["nul_tag"].file_id: "nul_character",
        bad["nul_metadata"].file_id: "nul_character",
        bad["checksum_too_long"].file_id: "StringDataRightTruncationError (SQLSTATE 22001)",
    }
    rows = await catalog.rows()
    assert rows.keys() == {a.file_id for a in attrs} | {old.file_id}
    assert _as_attr_values(rows[old.file_id]) == _expected(old)
    for a in attrs:
        assert _as_attr_values(rows[a.file_id]) == _expected(a)


async def test_the_online_job_reports_refused_rows_with_the_engine(
    tmp_path: Path, catalog: Catalog
) -> None:
    backend = _backend(tmp_path)
    attrs = [_attr(i) for i in range(5)]
    refused = _attr(77, checksum="x" * 81)
    for a in [*attrs, refused]:
        _write(backend.layout.files_dir, a)
    engine = make_engine(catalog.url, pool_size=1)
    try:
        repo = CatalogRepository(engine, catalog.se_id)
        result = await rebuild_mod.rebuild(backend, repo)
        assert (result.written, result.bad) == (5, 0)
        assert list(result.refused) == [refused.file_id]
        assert await repo.get(attrs[0].file_id) == attrs[0]  # the connection is usable
    finally:
        await engine.dispose()
    assert (await catalog.rows()).keys() == {a.file_id for a in attrs}
