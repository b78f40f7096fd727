"""Search in-process, on catalog rows written straight into the worker's database: the
filters, ranking, sorting, paging, one item per file, and the validation errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.inprocess.helpers import assert_error
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer

DEFAULT_ROW: dict[str, Any] = {
    "schema_version": 1,
    "content_type": "application/octet-stream",
    "size": 100,
    "status": "active",
    "retention_policy": "permanent",
    "ttl_days": None,
    "expires_at": None,
    "description": "",
    "tags": [],
    "metadata": {},
    "version": 1,
}


class Catalog:
    """Rows of one test: its own uploader name keeps its searches to its own rows."""

    def __init__(self, client: httpx.AsyncClient, db: TestDatabase) -> None:
        self.client = client
        self.db = db
        self.owner = f"owner-{uuid.uuid4().hex[:10]}"
        self.se = f"se-q-{uuid.uuid4().hex[:10]}"
        self._clock = 0

    async def sql(self, query: str, *args: Any) -> None:
        conn = await asyncpg.connect(self.db.url.replace("+asyncpg", ""))
        try:
            await conn.execute(query, *args)
        finally:
            await conn.close()

    async def put(self, filename: str = "file.bin", *, se: str | None = None, **fields: Any) -> str:
        self._clock += 1
        at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=self._clock)
        row = {
            **DEFAULT_ROW,
            "file_id": str(uuid.uuid4()),
            "original_filename": filename,
            "uploaded_by": self.owner,
            "uploaded_at": at,
            "updated_at": at,
            **fields,
        }
        cols = [*row, "storage_element_id", "storage_path", "checksum", "meta_checksum"]
        values = [*row.values(), se or self.se, f"files/{row['file_id']}", "sha256:" + "0" * 64,
                  "sha256:" + "1" * 64]  # fmt: skip
        values = [json.dumps(v) if isinstance(v, dict) else v for v in values]
        marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
        await self.sql(
            f"INSERT INTO catalog.files ({', '.join(cols)}) VALUES ({marks})",  # noqa: S608
            *values,
        )
        return str(row["file_id"])

    async def search(self, expect: int = 200, **body: Any) -> Any:
        body.setdefault("uploaded_by", self.owner)
        r = await self.client.post("/api/v1/search", json=body)
        assert r.status_code == expect, r.text
        return r.json()

    async def ids(self, **body: Any) -> list[str]:
        return [i["file_id"] for i in (await self.search(**body))["items"]]


@pytest.fixture
def catalog(query: httpx.AsyncClient, database: TestDatabase) -> Catalog:
    return Catalog(query, database)


async def test_full_text_ranks_filename_above_description(catalog: Catalog) -> None:
    in_desc = await catalog.put("notes.txt", description="the zebra quarterly figures")
    in_name = await catalog.put("zebra-quarterly.txt", description="figures")
    in_tags = await catalog.put("other.txt", tags=["zebra"], description="quarterly")
    await catalog.put("unrelated.txt", description="nothing here")
    page = await catalog.search(query="zebra quarterly")
    assert [i["file_id"] for i in page["items"]] == [in_name, in_tags, in_desc]
    scores = [i["score"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert "score" not in (await catalog.search())["items"][0]


async def test_filename_extension_type_tags_metadata(catalog: Catalog) -> None:
    a = await catalog.put("Annual_Report_2024.PDF", tags=["red", "blue"], metadata={"d": "x"})
    b = await catalog.put("annual_report_2024.pdf.bak", tags=["red"], content_type="image/png")
    assert set(await catalog.ids(filename="report_2024")) == {a, b}
    assert await catalog.ids(filename="Annual_Report_2024.PDF", match="exact") == [a]
    assert await catalog.ids(filename="%") == []  # LIKE wildcards are plain characters
    assert await catalog.ids(file_extension=".pdf") == [a]
    assert await catalog.ids(content_type="image/png") == [b]
    assert await catalog.ids(tags=["red", "blue"]) == [a]
    assert await catalog.ids(metadata={"d": "x"}) == [a]
    assert await catalog.ids(query="x") == [a]  # full text reaches metadata values


async def test_status_retention_size_and_dates(catalog: Catalog) -> None:
    t0 = datetime(2030, 5, 1, tzinfo=UTC)
    small = await catalog.put("s", size=10, uploaded_at=t0, updated_at=t0)
    big = await catalog.put("b", size=9000, retention_policy="temporary", ttl_days=30)
    deleted = await catalog.put("d", status="deleted")
    assert set(await catalog.ids()) == {small, big}
    assert await catalog.ids(status="deleted") == [deleted]
    assert await catalog.ids(retention_policy="temporary") == [big]
    assert await catalog.ids(min_size=11) == [big]
    assert await catalog.ids(uploaded_after=(t0 - timedelta(days=1)).isoformat()) == [small]
    for bad in (
        {"status": "gone"},
        {"min_size": 600, "max_size": 500},
        {"min_size": -1},
        {"uploaded_after": t0.isoformat(), "uploaded_before": (t0 - timedelta(1)).isoformat()},
        {"sort_by": "colour"},
        {"sort_order": "up"},
        {"limit": 0},
        {"offset": -1},
        {"unknown_field": 1},
    ):
        assert_error(await catalog.client.post("/api/v1/search", json=bad), 400, "VALIDATION_ERROR")


async def test_sort_and_pages(catalog: Catalog) -> None:
    b = await catalog.put("b.txt", size=300)
    a = await catalog.put("a.txt", size=100)
    c = await catalog.put("c.txt", size=200)
    assert await catalog.ids() == [c, a, b]
    assert await catalog.ids(sort_by="original_filename", sort_order="asc") == [a, b, c]
    assert await catalog.ids(sort_by="size") == [b, c, a]
    page = await catalog.search(limit=2, offset=0)
    assert (page["total"], page["has_more"], page["total_relation"]) == (3, True, "eq")
    last = await catalog.search(limit=2, offset=2)
    assert [i["file_id"] for i in last["items"]] == [b] and last["has_more"] is False


async def test_one_item_per_file_and_quarantine(catalog: Catalog) -> None:
    t = datetime(2025, 3, 1, tzinfo=UTC)
    fid = await catalog.put("twice.txt", uploaded_at=t, updated_at=t, description="old words")
    other = catalog.se + "-b"
    later = t + timedelta(seconds=5)
    await catalog.put(
        "twice.txt", se=other, file_id=fid, uploaded_at=t, updated_at=later, version=2,
        description="new words",
    )  # fmt: skip
    page = await catalog.search()
    assert page["total"] == 1
    item = page["items"][0]
    assert (item["storage_element_id"], item["version"]) == (other, 2)
    assert sorted(c["storage_element_id"] for c in item["copies"]) == sorted([catalog.se, other])
    assert await catalog.ids(query="old") == []
    bad = await catalog.put("bad.txt")
    await catalog.sql("UPDATE catalog.files SET quarantined_at = now() WHERE file_id = $1", bad)
    assert await catalog.ids() == [fid]


async def test_get_quick_search_and_auth(catalog: Catalog, issuer: TestIssuer) -> None:
    hit = await catalog.put("falcon.txt", description="peregrine falcon", tags=["bird", "fast"])
    await catalog.put("owl.txt", description="barn owl", tags=["bird"])
    c = catalog.client
    r = await c.get("/api/v1/search", params={"q": "falcon", "uploaded_by": catalog.owner})
    assert [i["file_id"] for i in r.json()["items"]] == [hit]
    r = await c.get(
        "/api/v1/search",
        params=[("tags", "bird"), ("tags", "fast"), ("uploaded_by", catalog.owner)],
    )
    assert [i["file_id"] for i in r.json()["items"]] == [hit]
    r = await c.post("/api/v1/search")
    assert r.status_code == 200 and (r.json()["limit"], r.json()["offset"]) == (100, 0)
    assert_error(
        await c.post("/api/v1/search", json={}, headers={"Authorization": ""}), 401, "UNAUTHORIZED"
    )
    wrong = {"Authorization": f"Bearer {issuer.token('storage:read')}"}
    assert_error(await c.post("/api/v1/search", json={}, headers=wrong), 403, "FORBIDDEN")
