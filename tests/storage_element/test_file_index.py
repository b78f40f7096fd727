"""The SE's file index (issue 19): an SQLite table in the data directory, trusted at
start only after a clean stop, else rebuilt by one walk; lists without the catalog are
answered from it, in the catalog's order and with its total.

Whether a start walked the backend is read from the SE's log (one record per rebuild),
never from timings.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from artstore.storage_element.files.index import Entry, FileIndex, IndexCorrupt
from tests.conftest import SEFactory
from tests.storage_element.test_hostile_text import LONG_NAMES
from tests.support.database import TestDatabase
from tests.support.proxy import CuttableProxy, proxied
from tests.support.se import StorageElementUnderTest

REBUILT = "file index rebuilt by a walk of the backend"
UNUSABLE = "file index unusable"


@pytest.fixture
def db_proxy(database: TestDatabase) -> Iterator[tuple[CuttableProxy, str]]:
    proxy, url = proxied(database.url)
    yield proxy, url
    proxy.close()


def _log_records(se: StorageElementUnderTest) -> list[dict[str, Any]]:
    out = []
    for line in se.process.log_path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _count(se: StorageElementUnderTest, message: str) -> int:
    return sum(1 for r in _log_records(se) if str(r.get("message", "")).startswith(message))


def _upload(c: httpx.Client, name: str, data: bytes, **params: Any) -> str:
    r = c.post("/api/v1/files", content=data, params={"filename": name, **params})
    assert r.status_code == 201, r.text
    return str(r.json()["file_id"])


def _findable(se: StorageElementUnderTest, files: dict[str, bytes]) -> None:
    with se.client() as c:
        for file_id, data in files.items():
            d = c.get(f"/api/v1/files/{file_id}/download")
            assert d.status_code == 200, (file_id, d.text)
            assert d.content == data


def _pages(c: httpx.Client, status: str | None, limit: int) -> tuple[list[str], set[int]]:
    """Every page of a list: the ids in order, and the totals the pages reported."""
    ids: list[str] = []
    totals: set[int] = set()
    offset = 0
    while True:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        r = c.get("/api/v1/files", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        totals.add(body["total"])
        got = [f["file_id"] for f in body["items"]]
        ids += got
        offset += limit
        if offset >= body["total"]:
            return ids, totals


def test_clean_restart_trusts_the_index_without_a_walk(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    files: dict[str, bytes] = {}
    with se.client() as c:
        for i in range(12):
            data = f"file {i} {uuid.uuid4()}".encode()
            files[_upload(c, f"f{i}.bin", data)] = data
        gone = next(iter(files))
        assert c.delete(f"/api/v1/files/{gone}").status_code == 204
        info = c.get("/api/v1/info").json()
    assert _count(se, REBUILT) == 1  # the first start: no index yet
    se.restart()
    assert _count(se, REBUILT) == 1, "a clean restart walked the backend"
    ready = [r for r in _log_records(se) if r.get("message") == "storage element ready"]
    assert ready[-1]["index"] == "trusted" and ready[0]["index"] == "rebuilt"
    live = {k: v for k, v in files.items() if k != gone}
    _findable(se, live)
    with se.client() as c:
        assert c.get(f"/api/v1/files/{gone}").json()["status"] == "deleted"
        # The counters came from the clean mark: what they were before the stop.
        after = c.get("/api/v1/info").json()
    for key in ("used_bytes", "file_count"):
        assert after["capacity"][key] == info["capacity"][key], key
    assert info["capacity"]["file_count"] == len(files)
    with se.client() as c:  # maintenance status says how the index came up
        index = c.get("/api/v1/maintenance/status").json()["index"]
    assert index["trusted_at_start"] is True and index["rebuilds"] == 0
    assert index["filled"] is True
    # A file written after the trusted start is found too (the index is live).
    with se.client() as c:
        data = b"after the restart"
        live[_upload(c, "late.bin", data)] = data
    _findable(se, live)


def test_sigkill_rebuilds_and_every_acknowledged_file_is_found(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    files: dict[str, bytes] = {}
    with se.client() as c:
        for i in range(15):
            data = os.urandom(100 + i)
            files[_upload(c, f"k{i}.bin", data)] = data
        victim = next(iter(files))
        assert c.patch(f"/api/v1/files/{victim}", json={"description": "v2"}).status_code == 200
    se.restart()  # a clean stop first: the mark is there ...
    with se.client() as c:
        for i in range(5):  # ... and removed by the start: these come after it
            data = os.urandom(50 + i)
            files[_upload(c, f"late{i}.bin", data)] = data
    with se.client() as c:
        before = c.get("/api/v1/info").json()["capacity"]
    se.process.kill()  # SIGKILL: no clean mark written
    se.start()
    assert _count(se, REBUILT) == 2  # the first start, and this one
    with se.client() as c:  # the same counters from the walk (sizes may come later)
        deadline = time.monotonic() + 30
        while (now := c.get("/api/v1/info").json()["capacity"])["used_bytes"] != before[
            "used_bytes"
        ] and time.monotonic() < deadline:
            time.sleep(0.1)
    assert (now["used_bytes"], now["file_count"]) == (before["used_bytes"], len(files))
    _findable(se, files)
    with se.client() as c:
        assert c.get(f"/api/v1/files/{victim}").json()["description"] == "v2"
        ids, totals = _pages(c, None, 7)
    assert sorted(ids) == sorted(files) and totals == {len(files)}


def test_corrupt_index_file_is_rebuilt_not_a_crash(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    files: dict[str, bytes] = {}
    with se.client() as c:
        for i in range(6):
            data = f"c{i}".encode()
            files[_upload(c, f"c{i}.bin", data)] = data
    se.process.stop()
    index = se.data_dir / "index.sqlite3"
    assert (se.data_dir / "index.clean").exists()  # clean stop: marked
    index.write_bytes(b"this is not an SQLite database" * 100)
    se.start()
    assert _count(se, UNUSABLE) == 1 and _count(se, REBUILT) == 2
    assert not (se.data_dir / "index.clean").exists()  # removed while running
    _findable(se, files)


def _catalog_order(database: TestDatabase, se_id: str, status: str | None) -> list[str]:
    """The catalog's own list order for one SE (read from PostgreSQL, not the SE)."""
    statuses = [status] if status else ["active", "expired"]

    async def run() -> list[str]:
        conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch(
                "SELECT file_id::text AS id FROM catalog.files WHERE storage_element_id = $1"
                " AND status = ANY($2) AND quarantined_at IS NULL"
                " ORDER BY uploaded_at DESC, file_id DESC",
                se_id,
                statuses,
            )
        finally:
            await conn.close()
        return [r["id"] for r in rows]

    return asyncio.run(run())


def test_list_without_the_catalog_pages_like_the_catalog(
    se_factory: SEFactory, db_proxy: tuple[CuttableProxy, str], database: TestDatabase
) -> None:
    proxy, url = db_proxy
    se = se_factory(
        "edit",
        DATABASE_URL=url,
        SE_CATALOG_TIMEOUT="1",
        SE_ALLOW_CLOCK_OVERRIDE="true",
        SE_RECLAIM_AGE="3600",
    )
    rng = random.Random(19)
    with se.client() as c:
        ids = [
            _upload(c, f"l{i}.txt", f"l{i}".encode(), **({"ttl_days": 1} if i % 4 == 0 else {}))
            for i in range(40)
        ]
        # Temporary files become expired (gc at a clock two days ahead) ...
        at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        assert c.post("/api/v1/maintenance/gc", params={"now": at}).status_code in (200, 202)
        # ... then some are deleted (tombstones), some updated.
        for fid in rng.sample(ids, 12):
            r = c.delete(f"/api/v1/files/{fid}")
            assert r.status_code in (204, 409, 410), r.text
        for fid in rng.sample(ids, 5):
            c.patch(f"/api/v1/files/{fid}", json={"tags": ["t"]})
        expected = {s: _pages(c, s, 7) for s in (None, "active", "expired", "deleted")}
    assert expected["expired"][0] and expected["deleted"][0] and expected["active"][0]
    # Lists come from the index (issue 19): the same order and totals as the catalog's.
    for status, (order, totals) in expected.items():
        assert order == _catalog_order(database, se.id, status), status
        assert totals == {len(order)}, status
    proxy.cut()
    with se.client() as c:
        for status, (order, totals) in expected.items():
            assert _pages(c, status, 7) == (order, totals), status
        # Changes while the catalog is away are listed too (updates owed).
        assert c.delete(f"/api/v1/files/{expected['active'][0][0]}").status_code == 204
        fresh = _upload(c, "fresh.txt", b"fresh")
        active, totals = _pages(c, "active", 5)
        assert active[0] == fresh and expected["active"][0][0] not in active
        assert totals == {len(expected["active"][0])}
    se.restart()  # the owed updates and the index both survive a clean stop
    with se.client() as c:
        assert _pages(c, "active", 5) == (active, totals)


@pytest.mark.parametrize("how", ["clean", "sigkill"])
def test_hostile_names_in_the_index(se_factory: SEFactory, how: str) -> None:
    se = se_factory("edit")
    files: dict[str, bytes] = {}
    with se.client() as c:
        for script, name in sorted(LONG_NAMES.items()):
            data = f"{script} {uuid.uuid4()}".encode()
            r = c.post("/api/v1/files", files={"file": (name, data, "text/plain")})
            assert r.status_code == 201, r.text
            files[r.json()["file_id"]] = data
    if how == "clean":
        se.restart()
    else:
        se.process.kill()
        se.start()
    _findable(se, files)
    with se.client() as c:
        listed = c.get("/api/v1/files").json()["items"]
    assert {f["original_filename"] for f in listed} == set(LONG_NAMES.values())


# -- the index itself (no process) ------------------------------------------------------
def _entry(rng: random.Random, base: datetime) -> tuple[str, Entry]:
    file_id = str(uuid.UUID(int=rng.getrandbits(128)))
    status = rng.choice(["active", "expired", "deleted"])
    # Few distinct times: ties are broken by the file id, as the catalog does.
    at = base + timedelta(microseconds=rng.randint(0, 5))
    path = f"2026/01/01/00/n_u_20260101T000000_{file_id.replace('-', '')[:8]}.bin"
    return path, Entry(file_id, status, at)


def test_index_pages_in_catalog_order_with_ties_and_overlay(tmp_path: Path) -> None:
    rng = random.Random(5)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    index = FileIndex(tmp_path, 1)
    index.open()
    index.ensure_indexes()
    try:
        rows = dict(_entry(rng, base) for _ in range(300))
        for path, entry in rows.items():
            index.put(path, entry)
        some = next(iter(rows))
        # Seen at once (the overlay), before the writer commits it.
        assert some in index.candidates(rows[some].file_id)
        dropped = list(rows)[:40]
        for path in dropped:
            index.discard(path)
            del rows[path]
        assert dropped[0] not in index.candidates(
            str(uuid.UUID(dropped[0].rsplit("_", 1)[1][:8] + "0" * 24))
        )
        index.flush_sync()
        for path in list(rows)[:60]:  # committed rows that change status (an upsert)
            e = rows[path]
            rows[path] = Entry(
                e.file_id, "deleted" if e.status != "deleted" else "active", e.uploaded_at
            )
            index.put(path, rows[path])
        for statuses in (["active", "expired"], ["deleted"], ["active"]):
            want = sorted(
                (e for e in rows.values() if e.status in statuses),
                key=lambda e: (e.uploaded_at, uuid.UUID(e.file_id).bytes),
                reverse=True,
            )
            by_id = {e.file_id: p for p, e in rows.items()}
            got: list[str] = []
            for offset in range(0, len(want) + 9, 9):
                page, total = index.page(statuses, 9, offset)
                assert total == len(want)
                got += page
            assert got == [by_id[e.file_id] for e in want]
    finally:
        index.close()


def test_index_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "index.sqlite3").write_bytes(os.urandom(8192))
    with pytest.raises(IndexCorrupt):
        FileIndex(tmp_path).open()


async def test_clean_stop_before_the_used_bytes_were_counted_is_still_trusted(
    tmp_path: Path,
) -> None:
    """A names-only rebuild counts used bytes after ready; a clean stop before that ends
    marks the index clean with the count owed: the next start trusts the index (no
    walk to rebuild it) and counts the bytes again."""
    from artstore.storage_element import lifecycle
    from artstore.storage_element.state import SEState
    from tests.support.se import in_process_node

    def node() -> SEState:
        made: SEState = in_process_node(tmp_path / "data")
        return made

    folder = tmp_path / "data" / "files" / "2026" / "01" / "01" / "00"
    folder.mkdir(parents=True)
    (folder / "x.bin").write_bytes(b"x" * 100)
    first = node()
    tasks = await lifecycle.start(first)
    assert first.index_stats.walks == 1
    first.index_stats.sizes_owed = True  # stopped before the stat walk finished
    await lifecycle.stop(first, tasks)
    assert json.loads((tmp_path / "data" / "index.clean").read_bytes())["used_bytes_pending"] == 1
    second = node()
    tasks = await lifecycle.start(second)
    try:
        assert second.index_stats.trusted and second.index_stats.walks == 0
        for _ in range(200):
            if not second.index_stats.sizes_owed:
                break
            await asyncio.sleep(0.05)
        assert not second.index_stats.sizes_owed
        assert second.capacity.used_bytes == 100
    finally:
        await lifecycle.stop(second, tasks)
