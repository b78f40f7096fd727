"""Every way a search page is read (repository.search picks one by the request and the
count limit) gives the same items, each with its own copies, best copy first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.query.conftest import Catalog, SearchQuery

FILES = 12


@pytest.fixture
def twice(catalog: Catalog) -> list[str]:
    """FILES files, each with an older second copy on ``<se>-b``; newest first."""
    ids = []
    for n in range(FILES):
        fid = catalog.put(f"f{n:02d}.txt", tags=["even" if n % 2 == 0 else "odd"])
        # Same upload, older copy: never the one that speaks for the file.
        row = catalog.qm.sql("SELECT uploaded_at FROM catalog.files WHERE file_id = $1", fid)[0]
        catalog.put(f"f{n:02d}.txt", se=catalog.se + "-b", file_id=fid,
                    uploaded_at=row["uploaded_at"],
                    updated_at=row["uploaded_at"] - timedelta(seconds=1),
                    tags=["even" if n % 2 == 0 else "odd"])  # fmt: skip
        ids.append(fid)
    return list(reversed(ids))


def _page(qm: SearchQuery, catalog: Catalog, **body: Any) -> dict[str, Any]:
    with qm.client() as c:
        r = c.post("/api/v1/search", json={"uploaded_by": catalog.owner, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _check_copies(catalog: Catalog, page: dict[str, Any]) -> None:
    for item in page["items"]:
        assert item["storage_element_id"] == catalog.se
        assert item["copies"] == [
            {"storage_element_id": catalog.se, "status": "active"},
            {"storage_element_id": catalog.se + "-b", "status": "active"},
        ], item["file_id"]


@pytest.mark.parametrize(
    ("body", "first"),
    [
        # Listings in order: within the count limit the first matches are the page.
        ({"limit": 2}, 0),
        # Past the count limit (3), sorted from a subquery named like the copies' alias.
        ({"limit": 5, "offset": 3}, 3),
        ({"limit": 2, "offset": 5}, 5),  # offset past one page: copies by a 2nd statement
        ({"limit": 1, "offset": 10}, 10),  # ten pages deep: the deferred join
        # Full text (ranked in a window of 2; equal scores: file_id order within it).
        ({"query": "txt", "sort_by": "uploaded_at", "limit": 4}, 0),
        ({"query": "txt", "sort_by": "uploaded_at", "limit": 2, "offset": 4}, 4),
    ],
)
def test_each_path_gives_the_page_and_its_copies(
    windowed_qm: SearchQuery, catalog: Catalog, twice: list[str], body: dict[str, Any], first: int
) -> None:
    page = _page(windowed_qm, catalog, **body)
    limit = body["limit"]
    assert [i["file_id"] for i in page["items"]] == twice[first : first + limit]
    assert page["has_more"] == (first + limit < FILES)
    _check_copies(catalog, page)


def test_gin_filters_past_the_count_limit(
    windowed_qm: SearchQuery, catalog: Catalog, twice: list[str]
) -> None:
    """Tags are not walked in order: more matches than the limit take the index walk."""
    even = [f for n, f in enumerate(reversed(twice)) if n % 2 == 0][::-1]
    page = _page(windowed_qm, catalog, tags=["even"], limit=2, offset=1)
    assert [i["file_id"] for i in page["items"]] == even[1:3]
    assert page["total"] == 4 and page["total_relation"] == "gte"  # what the page proves
    _check_copies(catalog, page)


def test_ranked_window_page_has_its_copies(
    windowed_qm: SearchQuery, catalog: Catalog, twice: list[str]
) -> None:
    page = _page(windowed_qm, catalog, query="f03")
    assert [i["file_id"] for i in page["items"]] == [twice[FILES - 1 - 3]]
    assert page["total"] == 1 and page["items"][0]["score"] > 0
    _check_copies(catalog, page)


def test_default_process_listing(catalog: Catalog, twice: list[str]) -> None:
    """QM_SEARCH_COUNT_LIMIT 1000: every match is counted, the page walked in order."""
    page = catalog.search(limit=5, offset=2)
    assert [i["file_id"] for i in page["items"]] == twice[2:7]
    assert page["total"] == FILES and page["total_relation"] == "eq"
    _check_copies(catalog, page)
