"""A catalog row PostgreSQL refuses for its data never blocks the others (issue 11).

In-process: ``CatalogSync`` and ``CatalogRepository`` against the test database, with
attrs PostgreSQL cannot store (a NUL, a lone surrogate). Against a running SE: an attr
written by hand with a NUL description, then rebuild-index, reconcile, status, readiness,
metrics and a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.db import make_engine
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.catalog.errors import is_data_error, safe_reason
from artstore.storage_element.catalog.refused import FILE_NAME, RefusedFiles
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.catalog.sync import CatalogSync
from artstore.storage_element.layout import hour_folder, storage_name
from artstore.storage_element.wal.journal import Journal
from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.se import StorageElementUnderTest

# Words of PostgreSQL's and the driver's messages, and of our SQL: none may reach a client.
SQL_WORDS = ("INSERT", "catalog.files", "invalid byte sequence", "0x00", "\\u0000", "$1")


def _attr(description: str = "fine", **kw: Any) -> Attr:
    now = datetime.now(UTC)
    fid = uuid.uuid4()
    data: dict[str, Any] = {
        "file_id": str(fid),
        "storage_path": f"{hour_folder(now)}/{storage_name('a.txt', 'alice', now, fid)}",
        "original_filename": "a.txt",
        "content_type": "text/plain",
        "size": 1,
        "checksum": "sha256:" + "0" * 64,
        "uploaded_by": "alice",
        "uploaded_at": now,
        "updated_at": now,
        "version": 1,
        "status": "active",
        "retention_policy": "permanent",
        "ttl_days": None,
        "expires_at": None,
        "description": description,
        "tags": [],
        "metadata": {},
    }
    data.update(kw)
    attr = Attr.model_validate(data)
    try:
        return attr.sealed()
    except UnicodeEncodeError:  # a lone surrogate cannot be sealed; the catalog sees it anyway
        return attr.model_copy(update={"meta_checksum": "sha256:" + "0" * 64})


BAD_ATTRS: dict[str, dict[str, Any]] = {
    "nul_in_description": {"description": "a\x00b"},
    "lone_surrogate_in_tag": {"tags": ["ok", "\ud800"]},
    "lone_surrogate_in_metadata": {"metadata": {"k": "\ud800"}},
    "nul_in_metadata": {"metadata": {"k": "v\x00"}},
    "too_long_for_its_column": {"checksum": "sha256:" + "f" * 100},
}


async def _row_ids(engine: AsyncEngine, se_id: str) -> set[str]:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        rows = await driver.fetch(
            "SELECT file_id FROM catalog.files WHERE storage_element_id = $1", se_id
        )
    return {str(r["file_id"]) for r in rows}


class Harness:
    def __init__(self, engine: AsyncEngine, tmp: Path) -> None:
        self.engine = engine
        self.se_id = f"se-refused-{uuid.uuid4().hex[:8]}"
        self.repo = CatalogRepository(engine, self.se_id)
        self.journal = Journal(tmp / "wal", 1 << 20)
        self.journal.open_new_segment()
        self.path = tmp / FILE_NAME
        self.sync = CatalogSync(self.repo, self.journal, 5.0, 0.5, refused_path=self.path)

    async def commit(self, attr: Attr) -> bool:
        """A committed change as the write path makes it, then its catalog update."""
        txn = await self.journal.begin("upload", {"file_id": attr.file_id})
        await self.journal.commit(txn, owes_catalog=True)
        return await self.sync.record(txn, attr.file_id, attr)

    async def rows(self) -> set[str]:
        return await _row_ids(self.engine, self.se_id)

    def persisted(self) -> dict[str, str]:
        data: dict[str, str] = json.loads(self.path.read_bytes())["refused"]
        return data


@pytest.fixture
async def harness(database: TestDatabase, tmp_path: Path) -> AsyncIterator[Harness]:
    engine = make_engine(database.url, pool_size=2)
    h = Harness(engine, tmp_path)
    try:
        yield h
    finally:
        await h.journal.close()
        await engine.dispose()


@pytest.mark.parametrize("bad", list(BAD_ATTRS))
async def test_a_refused_row_does_not_block_the_others(harness: Harness, bad: str) -> None:
    refused = _attr(**BAD_ATTRS[bad])
    before = [_attr(f"before {i}") for i in range(3)]
    after = [_attr(f"after {i}") for i in range(3)]
    # Committed together: one group statement, refused, then written row by row.
    landed = await asyncio.gather(*(harness.commit(a) for a in [*before, refused, *after]))

    assert landed == [True, True, True, False, True, True, True]
    assert await harness.rows() == {a.file_id for a in [*before, *after]}
    assert harness.sync.owed == {} and harness.journal.pending == 0
    assert harness.sync.reachable is True and not harness.sync.owes(before[0].file_id)
    assert list(harness.sync.refused.reasons()) == [refused.file_id]
    assert harness.sync.owes(refused.file_id)  # reads of it go to the attr
    reason = harness.sync.refused.reasons()[refused.file_id]
    assert not any(w in reason for w in SQL_WORDS), reason
    assert harness.persisted() == {refused.file_id: reason}

    # Later updates land at once, alone or grouped: nothing queues behind the refused one.
    assert await harness.commit(_attr("later")) is True
    assert harness.sync.owed == {} and harness.journal.pending == 0


async def test_a_refused_file_alone_and_its_fix(harness: Harness) -> None:
    bad = _attr("a\x00b")
    assert await harness.commit(bad) is False
    assert harness.sync.refused.reasons() == {
        bad.file_id: "CharacterNotInRepertoireError (SQLSTATE 22021)"
    }
    # A restart remembers it (the journal does not owe it any more).
    again = RefusedFiles(harness.path)
    await again.load()
    assert again.reasons() == harness.sync.refused.reasons()

    fixed = bad.model_copy(update={"description": "ab", "version": 2}).sealed()
    assert await harness.commit(fixed) is True
    assert len(harness.sync.refused) == 0 and harness.persisted() == {}
    assert await harness.rows() == {bad.file_id}


async def test_replay_passes_a_refused_row(harness: Harness) -> None:
    """Updates owed during an outage, one of them refused for its data: the replay
    records that one and writes the rest, in order, instead of stopping at it."""
    attrs = [_attr("one"), _attr("a\x00b"), _attr("three")]
    by_id = {a.file_id: a for a in attrs}
    for a in attrs:
        txn = await harness.journal.begin("upload", {"file_id": a.file_id})
        await harness.journal.commit(txn, owes_catalog=True)
        harness.sync.owed[txn] = a.file_id

    async def load(file_id: str) -> Attr | None:
        return by_id[file_id]

    assert await harness.sync.replay(load) == 3
    assert harness.sync.owed == {} and harness.journal.pending == 0
    assert await harness.rows() == {attrs[0].file_id, attrs[2].file_id}
    assert list(harness.sync.refused.reasons()) == [attrs[1].file_id]


async def test_force_upsert_writes_every_good_row(harness: Harness) -> None:
    """reconcile's write: one bad row among many does not keep the others out."""
    good = [_attr(f"g{i}") for i in range(4)]
    bad = [_attr("a\x00b"), _attr(tags=["\udfff"])]
    refused = await harness.repo.force_upsert([good[0], bad[0], *good[1:3], bad[1], good[3]])
    assert set(refused) == {a.file_id for a in bad}
    assert await harness.rows() == {a.file_id for a in good}
    assert set(harness.sync.refused.reasons()) == {a.file_id for a in bad}  # recorded

    fixed = bad[0].model_copy(update={"description": "ab"}).sealed()
    assert await harness.repo.force_upsert([fixed]) == {}
    assert set(harness.sync.refused.reasons()) == {bad[1].file_id}


async def test_an_outage_is_still_owed_and_named_safely(tmp_path: Path) -> None:
    engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none", pool_size=1)
    h = Harness(engine, tmp_path)
    try:
        attr = _attr("fine")
        assert await h.commit(attr) is False
        assert list(h.sync.owed.values()) == [attr.file_id]
        assert len(h.sync.refused) == 0
        assert h.sync.reachable is False
        assert h.sync.last_error is not None and "127.0.0.1" not in h.sync.last_error
    finally:
        await h.journal.close()
        await engine.dispose()


def test_errors_are_classified_by_what_they_say() -> None:
    assert is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not is_data_error(ConnectionRefusedError(111, "refused"))
    assert not is_data_error(TimeoutError())
    assert safe_reason(TimeoutError("SELECT secret")) == "TimeoutError"

    class Wrapped(Exception):
        sqlstate = "22021"

    outer = RuntimeError("INSERT INTO catalog.files ... 'a\\x00b'")
    outer.__cause__ = Wrapped("invalid byte sequence for encoding UTF8: 0x00")
    assert is_data_error(outer)
    assert safe_reason(outer) == "Wrapped (SQLSTATE 22021)"
    lost = RuntimeError("connection lost")
    lost.__cause__ = type("Lost", (Exception,), {"sqlstate": "08006"})()
    assert not is_data_error(lost)


# -- against a running SE ------------------------------------------------------------------


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def _hand_written(se: StorageElementUnderTest, description: str) -> Attr:
    """A correctly sealed attr (and its blob) put into the data directory by hand, as an
    older version or a bug could have written it."""
    blob = b"hand written"
    attr = _attr(
        description,
        size=len(blob),
        checksum="sha256:" + hashlib.sha256(blob).hexdigest(),
    )
    sealed, raw = attr.seal()
    path = se.data_dir / "files" / sealed.storage_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    Path(f"{path}.attr.json").write_bytes(raw)
    return sealed


def _rows(database: TestDatabase, se_id: str) -> set[str]:
    async def fetch() -> set[str]:
        engine = make_engine(database.url, pool_size=1)
        try:
            return await _row_ids(engine, se_id)
        finally:
            await engine.dispose()

    return asyncio.run(fetch())


def _no_sql(body: Any) -> None:
    text = json.dumps(body)
    assert not any(w in text for w in SQL_WORDS), text


@pytest.mark.local_only
def test_a_running_se_reports_a_refused_row_and_stays_ok(
    se_factory: SEFactory, database: TestDatabase
) -> None:
    se = se_factory("edit")
    with se.client() as c:
        uploaded = [
            c.post("/api/v1/files", content=f"file {i}".encode(), params={"filename": f"{i}.txt"})
            for i in range(4)
        ]
        assert all(r.status_code == 201 for r in uploaded)
        ids = {r.json()["file_id"] for r in uploaded}
        bad = _hand_written(se, "a\x00b")

        job = c.post("/api/v1/maintenance/rebuild-index")
        assert job.status_code == 202
        job_id = job.json()["job_id"]

        def rebuilt() -> bool:
            r = c.get("/api/v1/maintenance/status").json()["rebuild"]
            return bool(r["job_id"] == job_id and r["state"] in ("done", "failed"))

        _wait(rebuilt)
        status = c.get("/api/v1/maintenance/status").json()
        assert status["rebuild"]["state"] == "done", status["rebuild"]
        assert status["rebuild"]["refused"] == 1
        assert status["rebuild"]["refused_file_ids"] == [bad.file_id]
        assert _rows(database, se.id) == ids  # every other file indexed
        assert status["catalog"]["refused"] == 1
        assert status["catalog"]["refused_file_ids"] == [bad.file_id]
        assert status["catalog"]["owed_updates"] == 0 and status["catalog"]["reachable"]
        _no_sql(status)

        report = c.post("/api/v1/maintenance/reconcile")
        assert report.status_code == 200
        assert report.json()["catalog"]["checked"] is True  # retried, not failed wholly
        _no_sql(report.json())
        status = c.get("/api/v1/maintenance/status").json()
        assert status["catalog"]["refused_file_ids"] == [bad.file_id]
        assert status["catalog"]["owed_updates"] == 0
        _no_sql(status)

        ready = httpx.get(f"{se.url}/health/ready").json()
        assert ready["status"] == "ok" and ready["checks"]["catalog"]["status"] == "ok"
        _no_sql(ready)
        metrics = httpx.get(f"{se.url}/metrics").text
        assert "artstore_storage_element_catalog_refused_rows 1.0" in metrics

        # Later writes land before their answer: nothing queues behind the refused row.
        later = c.post("/api/v1/files", content=b"later", params={"filename": "later.txt"})
        assert later.status_code == 201
        assert later.json()["file_id"] in _rows(database, se.id)

    se.restart()
    with se.client() as c:
        status = c.get("/api/v1/maintenance/status").json()
        assert status["catalog"]["owed_updates"] == 0 and status["wal"]["pending"] == 0
        assert status["catalog"]["refused_file_ids"] == [bad.file_id]  # remembered
        assert httpx.get(f"{se.url}/health/ready").json()["status"] == "ok"
        # Its reads come from the attr; a fix lands and clears it.
        assert c.get(f"/api/v1/files/{bad.file_id}").json()["description"] == "a\x00b"
        fixed = c.patch(f"/api/v1/files/{bad.file_id}", json={"description": "fixed"})
        assert fixed.status_code == 200, fixed.text
        status = c.get("/api/v1/maintenance/status").json()
        assert status["catalog"]["refused"] == 0
        assert bad.file_id in _rows(database, se.id)
