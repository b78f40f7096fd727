"""CopyReader (files/catalog.py): the copies a download may use, and the copies a
download read a moment ago, against a real catalog."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from artstore.query.files import catalog
from artstore.query.files.catalog import CopyReader
from tests.support import catalog_rows
from tests.support.database import TestDatabase


@pytest.fixture(scope="module")
def db(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    d = TestDatabase(f"{worker}_copyreader")
    try:
        yield d
    finally:
        d.drop()


async def _sql(db: TestDatabase, query: str, *args: object) -> None:
    conn = await asyncpg.connect(db.url.replace("+asyncpg", ""))
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


def test_recent_copies_are_reused_for_a_second_then_read_again(db: TestDatabase) -> None:
    se = f"se-{uuid.uuid4().hex[:8]}"
    fid = catalog_rows.row(se, 2).file_id  # one copy, active
    now = [1000.0]

    async def run() -> None:
        reader = CopyReader(db.url, clock=lambda: now[0])
        try:
            # Unknown: never kept, so a file that appears is found at once.
            assert await reader.copies(fid, recent=True) == []
            await _sql(db, catalog_rows.insert_sql(se, 1, start=2))
            first = await reader.copies(fid, recent=True)
            assert [(c["storage_element_id"], c["status"]) for c in first] == [(se, "active")]
            await _sql(db, "UPDATE catalog.files SET status = 'expired' WHERE file_id = $1", fid)
            # Within the second: the copies read before; a fresh read sees the change.
            assert (await reader.copies(fid, recent=True))[0]["status"] == "active"
            assert (await reader.copies(fid))[0]["status"] == "expired"
            # A caller changing the list it got changes nothing kept.
            (await reader.copies(fid, recent=True)).clear()
            assert len(await reader.copies(fid, recent=True)) == 1
            # An SE's word (forget) or the second passing: read again.
            reader.forget(fid)
            assert (await reader.copies(fid, recent=True))[0]["status"] == "expired"
            await _sql(db, "UPDATE catalog.files SET status = 'deleted' WHERE file_id = $1", fid)
            assert (await reader.copies(fid, recent=True))[0]["status"] == "expired"
            now[0] += catalog.RECENT_SECONDS + 0.01
            assert (await reader.copies(fid, recent=True))[0]["status"] == "deleted"
        finally:
            await reader.close()

    asyncio.run(run())


def test_recent_copies_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "RECENT_MAX", 3)
    reader = CopyReader("postgresql://unused@127.0.0.1:1/x")

    async def fake(file_id: str) -> list[dict[str, object]]:
        return [{"storage_element_id": "se", "status": "active", "expires_at": None}]

    monkeypatch.setattr(reader, "_read", fake)

    async def run() -> None:
        for i in range(10):
            await reader.copies(str(i), recent=True)
            assert len(reader._recent) <= 3

    asyncio.run(run())
