"""Search correctness on a generated catalog of 100,000 files (110,000 rows: every
tenth file has a second copy), checked against answers worked out in Python from the
generator's own description of each row (tests/support/catalog_rows.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.query.conftest import SearchQuery
from tests.support import catalog_rows
from tests.support.catalog_rows import Row
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer

N = 100_000
SE = "se-gen"
COUNT_LIMIT = 1_000  # QM_SEARCH_COUNT_LIMIT's default
RANK_WINDOW = 1_000  # QM_SEARCH_RANK_WINDOW's default


@pytest.fixture(scope="module")
def big(
    request: pytest.FixtureRequest, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SearchQuery, list[Row]]]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_q100k")

    async def load() -> None:
        conn = await asyncpg.connect(db.url.replace("+asyncpg", ""))
        try:
            await conn.execute(catalog_rows.insert_sql(SE, N))
            await conn.execute("ANALYZE catalog.files")
        finally:
            await conn.close()

    asyncio.run(load())
    qm = SearchQuery(tmp_path_factory.mktemp("qm100k"), issuer, db)
    qm.process.start()
    try:
        yield qm, catalog_rows.rows(SE, N)
    finally:
        qm.process.stop()
        db.drop()


def _search(qm: SearchQuery, **body: Any) -> dict[str, Any]:
    with qm.client() as c:
        r = c.post("/api/v1/search", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _check(qm: SearchQuery, expected: list[Row], pages: int = 2, **body: Any) -> None:
    """Total and the first pages (newest first unless the body says otherwise)."""
    limit = body.pop("limit", 50)
    for p in range(pages):
        page = _search(qm, limit=limit, offset=p * limit, **body)
        want = expected[p * limit : (p + 1) * limit]
        assert [i["file_id"] for i in page["items"]] == [r.file_id for r in want], (body, p)
        if len(expected) <= COUNT_LIMIT:
            assert page["total"] == len(expected) and page["total_relation"] == "eq"
        else:  # a lower bound: the limit, or what this page proves
            assert COUNT_LIMIT <= page["total"] <= len(expected)
            assert page["total_relation"] == "gte"
        assert page["has_more"] == ((p + 1) * limit < len(expected))
        for item in page["items"]:
            i = int(re.findall(r"_(\d+)\.", item["original_filename"])[0])
            assert len(item["copies"]) == (2 if i % 10 == 0 else 1)
            assert item["storage_element_id"] == SE  # the newer copy speaks


def _newest_first(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r.uploaded_at, reverse=True)


def test_tags_all_match(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    want = [r for r in rows if r.status == "active" and {"t3", "g2"} <= set(r.tags)]
    _check(qm, _newest_first(want), tags=["t3", "g2"])


def test_metadata_pairs(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    meta = {"project": "p42", "dept": "research"}
    want = [r for r in rows if r.status == "active" and r.metadata == meta]
    _check(qm, _newest_first(want), metadata=meta)


def test_partial_filename(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    want = [r for r in rows if r.status == "active" and "ice_123" in r.original_filename.lower()]
    _check(qm, _newest_first(want), filename="ICE_123")


def test_extension_and_uploader(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    want = [r for r in rows if r.status == "active" and r.extension == "png"
            and r.uploaded_by == "user7"]  # fmt: skip
    _check(qm, _newest_first(want), file_extension=".png", uploaded_by="user7")


def test_size_and_date_ranges_sorted_by_size(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    lo, hi = rows[20_000].uploaded_at, rows[60_000].uploaded_at
    want = [r for r in rows if r.status == "active" and 1_000_000 <= r.size <= 1_200_000
            and lo <= r.uploaded_at <= hi]  # fmt: skip
    want.sort(key=lambda r: (r.size, r.file_id))
    _check(qm, want, min_size=1_000_000, max_size=1_200_000, uploaded_after=lo.isoformat(),
           uploaded_before=hi.isoformat(), sort_by="size", sort_order="asc")  # fmt: skip


def test_deleted_and_temporary(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    want = [r for r in rows if r.status == "deleted" and r.retention_policy == "temporary"]
    _check(qm, _newest_first(want), status="deleted", retention_policy="temporary")


def test_full_text_matches_every_word(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    want = {r.file_id for r in rows if r.status == "active" and r.uploaded_by == "user3"
            and {"alpha", "golf"} <= set(r.description.split())}  # fmt: skip
    got: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = _search(qm, query="alpha golf", uploaded_by="user3", limit=1000, offset=offset)
        got += page["items"]
        offset += 1000
        if not page["has_more"]:
            break
    assert {i["file_id"] for i in got} == want and page["total"] == len(want)
    scores = [i["score"] for i in got]
    assert scores == sorted(scores, reverse=True)


def test_broad_search_counts_up_to_the_limit(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    active = _newest_first([r for r in rows if r.status == "active"])
    page = _search(qm, limit=100)
    assert [i["file_id"] for i in page["items"]] == [r.file_id for r in active[:100]]
    assert page["total"] == COUNT_LIMIT and page["total_relation"] == "gte" and page["has_more"]
    deep = _search(qm, limit=100, offset=len(active) - 50)
    assert [i["file_id"] for i in deep["items"]] == [r.file_id for r in active[-50:]]
    assert deep["has_more"] is False and deep["total"] >= len(active)
    assert httpx.get(f"{qm.url}/health/live").status_code == 200


def _by_relevance(rows: list[Row], word: str) -> list[Row]:
    """Best first: in these rows a topic word is only in the description (weight C), so
    the rank grows with how often it occurs there; equal ranks by file_id, descending."""
    return sorted(rows, key=lambda r: (r.description.split().count(word), r.file_id),
                  reverse=True)  # fmt: skip


def test_relevance_ranks_the_newest_window(big: tuple[SearchQuery, list[Row]]) -> None:
    qm, rows = big
    word = "charlie"
    matches = _newest_first([r for r in rows if r.status == "active"
                             and word in r.description.split()])  # fmt: skip
    assert len(matches) > 10 * RANK_WINDOW
    want = _by_relevance(matches[:RANK_WINDOW], word) + matches[RANK_WINDOW:]
    for offset, limit in ((0, 200), (RANK_WINDOW - 100, 200), (5000, 100)):
        page = _search(qm, query=word, limit=limit, offset=offset)
        got = [i["file_id"] for i in page["items"]]
        assert got == [r.file_id for r in want[offset : offset + limit]], offset
        assert page["has_more"] and page["total_relation"] == "gte"
    scores = [i["score"] for i in _search(qm, query=word, limit=200)["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]


def test_exact_ranking_and_count_when_asked(
    big: tuple[SearchQuery, list[Row]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """QM_SEARCH_RANK_WINDOW=0 ranks every match; QM_SEARCH_COUNT_LIMIT=0 counts all."""
    qm, rows = big
    exact = SearchQuery(tmp_path_factory.mktemp("qm-exact"), qm.issuer, qm.db,
                        QM_SEARCH_RANK_WINDOW="0", QM_SEARCH_COUNT_LIMIT="0")  # fmt: skip
    exact.process.start()
    try:
        word = "echo"
        matches = [r for r in rows if r.status == "active" and word in r.description.split()]
        want = _by_relevance(matches, word)
        page = _search(exact, query=word, limit=300, offset=1000)
        assert [i["file_id"] for i in page["items"]] == [r.file_id for r in want[1000:1300]]
        assert page["total"] == len(matches) and page["total_relation"] == "eq"
    finally:
        exact.process.stop()
