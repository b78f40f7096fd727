"""The catalog mirrors the attr files: written before the 201, owed and replayed when
PostgreSQL is away, and never the reason a write fails."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from artstore.storage_element.attr.model import decode
from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.proxy import CuttableProxy, proxied
from tests.support.se import StorageElementUnderTest


def _rows(database: TestDatabase, se_id: str) -> dict[str, dict[str, Any]]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database.url.replace("+asyncpg", ""))
        try:
            return await conn.fetch(
                "SELECT * FROM catalog.files WHERE storage_element_id=$1", se_id
            )
        finally:
            await conn.close()

    return {str(r["file_id"]): dict(r) for r in asyncio.run(fetch())}


def _attrs_on_disk(se: StorageElementUnderTest) -> dict[str, dict[str, Any]]:
    out = {}
    for path in se.attrs():
        attr = decode(path.read_bytes())
        # Every attr field but the bit-rot hash (issue 19: no catalog column).
        dump = attr.model_dump(exclude={"bitrot"})
        out[attr.file_id] = {**dump, "previews": attr.preview_sizes()}
    return out


def _assert_catalog_equals_attrs(database: TestDatabase, se: StorageElementUnderTest) -> None:
    rows, attrs = _rows(database, se.id), _attrs_on_disk(se)
    assert rows.keys() == attrs.keys()
    for file_id, attr in attrs.items():
        row = rows[file_id]
        for key, value in attr.items():
            got = row[key] if key != "file_id" else str(row[key])
            if key == "metadata" and isinstance(got, str):
                got = json.loads(got)
            assert got == value, (file_id, key)


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_row_is_written_before_the_201(
    rw_se: StorageElementUnderTest, database: TestDatabase
) -> None:
    with rw_se.client() as c:
        r = c.post(
            "/api/v1/files",
            content=b"abc",
            params={
                "filename": "a.txt",
                "tags": ["x", "y"],
                "metadata": '{"k": "v"}',
                "description": "first",
            },
        )
        assert r.status_code == 201
        file_id = r.json()["file_id"]
        assert file_id in _rows(database, rw_se.id)  # no waiting: it is there already
        c.patch(f"/api/v1/files/{file_id}", json={"description": "second"}).raise_for_status()
    _assert_catalog_equals_attrs(database, rw_se)
    assert _rows(database, rw_se.id)[file_id]["version"] == 2


@pytest.fixture
def db_proxy(database: TestDatabase) -> Iterator[tuple[CuttableProxy, str]]:
    proxy, url = proxied(database.url)
    yield proxy, url
    proxy.close()


def test_writes_succeed_while_catalog_is_down_and_are_replayed(
    se_factory: SEFactory, database: TestDatabase, db_proxy: tuple[CuttableProxy, str]
) -> None:
    proxy, url = db_proxy
    se = se_factory("edit", DATABASE_URL=url, SE_CATALOG_TIMEOUT="1")
    rng = random.Random(7)
    with se.client() as c:
        kept = c.post("/api/v1/files", content=b"before", params={"filename": "0.txt"}).json()
        proxy.cut()
        live: list[str] = []
        deleted: set[str] = set()
        kinds = {"upload": 0, "update": 0, "delete": 0}
        for i in range(200):  # mixed writes while the catalog is away
            kind = "upload" if len(live) < 5 else rng.choice(["upload", "update", "delete"])
            if kind == "upload":
                r = c.post(
                    "/api/v1/files", content=f"file {i}".encode(), params={"filename": f"{i}.txt"}
                )
                assert r.status_code == 201, r.text
                live.append(r.json()["file_id"])
            elif kind == "update":
                fid = rng.choice(live)
                r = c.patch(f"/api/v1/files/{fid}", json={"tags": [f"v{i}"]})
                assert r.status_code == 200, r.text
            else:
                fid = live.pop(rng.randrange(len(live)))
                assert c.delete(f"/api/v1/files/{fid}").status_code == 204
                deleted.add(fid)
            kinds[kind] += 1
        assert min(kinds.values()) > 20, kinds
        assert (
            c.patch(f"/api/v1/files/{kept['file_id']}", json={"description": "changed"}).status_code
            == 200
        )

        ready = httpx.get(f"{se.url}/health/ready").json()
        assert ready["status"] == "degraded" and ready["checks"]["catalog"]["status"] == "degraded"
        assert httpx.get(f"{se.url}/api/v1/info").json()["status"] == "degraded"
        lag = c.get("/api/v1/maintenance/status").json()["catalog"]
        assert lag["reachable"] is False and lag["owed_updates"] == 201
        # Reads fall back to the attr files, so they see every change.
        listed = c.get("/api/v1/files", params={"limit": 1000}).json()
        assert listed["total"] == len(live) + 1
        assert c.get(f"/api/v1/files/{kept['file_id']}").json()["description"] == "changed"

        proxy.restore()
        _wait(lambda: c.get("/api/v1/maintenance/status").json()["catalog"]["owed_updates"] == 0)
        rows = _rows(database, se.id)
        assert len(rows) == kinds["upload"] + 1
        assert {fid for fid, r in rows.items() if r["status"] == "deleted"} == deleted
    _assert_catalog_equals_attrs(database, se)
    assert httpx.get(f"{se.url}/health/ready").json()["status"] == "ok"


def test_owed_updates_survive_a_restart(
    se_factory: SEFactory, database: TestDatabase, db_proxy: tuple[CuttableProxy, str]
) -> None:
    proxy, url = db_proxy
    se = se_factory("rw", DATABASE_URL=url, SE_CATALOG_TIMEOUT="1")
    proxy.cut()
    with se.client() as c:
        ids = [
            c.post("/api/v1/files", content=b"x" * i, params={"filename": f"{i}"}).json()["file_id"]
            for i in range(5)
        ]
    se.process.kill()
    se.start()  # still no catalog: the owed updates come back from the journal
    assert _rows(database, se.id) == {}
    proxy.restore()
    _wait(lambda: set(_rows(database, se.id)) == set(ids))
    _assert_catalog_equals_attrs(database, se)
