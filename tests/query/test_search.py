"""Search (architecture §8): every filter, ranking, sorting, paging, one item per file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.query.conftest import Catalog, SearchQuery


def test_full_text_ranks_filename_hits_above_description_hits(catalog: Catalog) -> None:
    in_desc = catalog.put("notes.txt", description="the zebra quarterly figures")
    in_name = catalog.put("zebra-quarterly.txt", description="figures")
    in_tags = catalog.put("other.txt", tags=["zebra"], description="quarterly")
    catalog.put("unrelated.txt", description="nothing here")
    page = catalog.search(query="zebra quarterly")
    assert [i["file_id"] for i in page["items"]] == [in_name, in_tags, in_desc]
    scores = [i["score"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1] > 0
    assert page["total"] == 3


def test_full_text_better_match_first_whatever_its_age(catalog: Catalog) -> None:
    best = catalog.put("heron-sightings.txt", description="heron")  # oldest
    rest = [catalog.put(f"n{i}.txt", description="a heron", size=1 if i == 0 else 100)
            for i in range(3)]  # fmt: skip
    ids = catalog.ids(query="heron")
    assert ids[0] == best and set(ids[1:]) == set(rest)
    assert catalog.ids(query="heron", min_size=50)[0] == best


def _windowed(qm: SearchQuery, catalog: Catalog, **body: Any) -> dict[str, Any]:
    with qm.client() as c:
        r = c.post("/api/v1/search", json={"uploaded_by": catalog.owner, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_rank_window_ranks_only_the_newest_matches(
    windowed_qm: SearchQuery, catalog: Catalog
) -> None:
    """QM_SEARCH_RANK_WINDOW=2: the 2 newest matches best first, then older ones newest
    first; QM_SEARCH_COUNT_LIMIT=3 takes both ways of answering (4 and 3 matches)."""
    best = catalog.put("heron-sightings.txt", description="heron")  # oldest
    a, b, c = (catalog.put(f"n{i}.txt", description="a heron", size=1 if i == 0 else 100)
               for i in range(3))  # fmt: skip
    newest_c_b = sorted([b, c], reverse=True)  # equal scores: file_id, descending
    page = _windowed(windowed_qm, catalog, query="heron")
    assert [i["file_id"] for i in page["items"]] == [*newest_c_b, a, best]
    assert page["total_relation"] == "gte" and page["total"] == 4
    scores = [i["score"] for i in page["items"]]
    assert scores[0] == scores[1] < scores[3]  # the best match is past the window
    page = _windowed(windowed_qm, catalog, query="heron", min_size=50)
    assert [i["file_id"] for i in page["items"]] == [*newest_c_b, best]
    assert page["total_relation"] == "eq" and page["total"] == 3
    # Pages of the windowed order neither overlap nor skip, across the window's end.
    seen = [
        i["file_id"]
        for o in range(4)
        for i in _windowed(windowed_qm, catalog, query="heron", limit=1, offset=o)["items"]
    ]
    assert seen == [*newest_c_b, a, best]  # fmt: skip
    # Ascending relevance ranks the window worst first; older matches still follow.
    page = _windowed(windowed_qm, catalog, query="heron", sort_order="asc")
    assert [i["file_id"] for i in page["items"]] == [*sorted([b, c]), a, best]
    # Without a window (the default process) the best match leads.
    assert catalog.ids(query="heron")[0] == best


def test_count_limit_past_and_below(windowed_qm: SearchQuery, catalog: Catalog) -> None:
    made = [catalog.put(f"{n}.txt") for n in range(5)]
    newest_first = list(reversed(made))
    seen = []
    for offset in range(0, 6, 2):
        page = _windowed(windowed_qm, catalog, limit=2, offset=offset)
        assert page["total_relation"] == "gte" and page["total"] >= min(3, offset + 1)
        assert page["has_more"] == (offset + 2 < 5)
        seen += [i["file_id"] for i in page["items"]]
    assert seen == newest_first
    past = _windowed(windowed_qm, catalog, limit=2, offset=10)
    assert past["items"] == [] and past["total"] == 3 and past["total_relation"] == "gte"
    page = _windowed(windowed_qm, catalog, filename="1.txt")
    assert page["total"] == 1 and page["total_relation"] == "eq"
    assert _windowed(windowed_qm, catalog, filename="none")["total"] == 0


def test_deep_pages_follow_the_full_order(windowed_qm: SearchQuery, catalog: Catalog) -> None:
    """Pages past the count limit and 10 pages deep (a deferred join) agree with one
    page of everything, for every sort."""
    for n in range(12):
        catalog.put(f"f{n:02d}.txt", size=(n * 7) % 5)
    for sort in (
        {},
        {"sort_by": "size", "sort_order": "asc"},
        {"sort_by": "original_filename"},
        {"query": "txt", "sort_by": "uploaded_at"},
    ):
        full = catalog.search(limit=100, **sort)["items"]
        for offset in (10, 11, 12):
            page = _windowed(windowed_qm, catalog, limit=1, offset=offset, **sort)
            assert page["items"] == full[offset : offset + 1], (sort, offset)
            assert page["has_more"] == (offset + 1 < 12)
            assert page["total"] == (12 if offset < 12 else 3)
            assert page["total_relation"] == "gte"  # fmt: skip


def test_full_text_reaches_metadata_values(catalog: Catalog) -> None:
    fid = catalog.put("a.bin", metadata={"project": "nebula"})
    catalog.put("b.bin", metadata={"nebula": "key-not-value"})
    assert catalog.ids(query="nebula") == [fid]


def test_score_only_with_query(catalog: Catalog) -> None:
    catalog.put("x.txt", description="kestrel")
    assert "score" in catalog.search(query="kestrel")["items"][0]
    assert "score" not in catalog.search()["items"][0]


def test_filename_partial_and_exact(catalog: Catalog) -> None:
    a = catalog.put("Annual_Report_2024.pdf")
    b = catalog.put("annual_report_2024.pdf.bak")
    catalog.put("summary.pdf")
    assert set(catalog.ids(filename="report_2024")) == {a, b}  # case-insensitive substring
    assert catalog.ids(filename="Annual_Report_2024.pdf", match="exact") == [a]
    assert catalog.ids(filename="report_2024", match="exact") == []
    # LIKE wildcards in the input are plain characters.
    assert catalog.ids(filename="%") == []
    assert catalog.ids(filename="_") == [b, a]


def test_file_extension_without_dot_case_insensitive(catalog: Catalog) -> None:
    pdf = catalog.put("a.PDF")
    pdf2 = catalog.put("b.pdf")
    catalog.put("c.pdf.txt")
    catalog.put("pdf")
    for ext in ("pdf", ".pdf", "PDF", ".Pdf"):
        assert set(catalog.ids(file_extension=ext)) == {pdf, pdf2}, ext


def test_content_type(catalog: Catalog) -> None:
    png = catalog.put("a.png", content_type="image/png")
    catalog.put("a.txt", content_type="text/plain")
    assert catalog.ids(content_type="image/png") == [png]


def test_tags_all_must_match(catalog: Catalog) -> None:
    both = catalog.put("1", tags=["red", "blue", "green"])
    catalog.put("2", tags=["red"])
    catalog.put("3", tags=["blue"])
    assert catalog.ids(tags=["red", "blue"]) == [both]
    assert len(catalog.ids(tags=["red"])) == 2


def test_metadata_exact_pairs(catalog: Catalog) -> None:
    hit = catalog.put("1", metadata={"dept": "legal", "year": "2024"})
    catalog.put("2", metadata={"dept": "legal", "year": "2023"})
    catalog.put("3", metadata={"dept": "Legal", "year": "2024"})
    assert catalog.ids(metadata={"dept": "legal", "year": "2024"}) == [hit]
    assert len(catalog.ids(metadata={"dept": "legal"})) == 2


def test_uploaded_by(catalog: Catalog) -> None:
    mine = catalog.put("1")
    catalog.put("2", uploaded_by=catalog.owner + "-other")
    assert catalog.ids() == [mine]


def test_retention_policy(catalog: Catalog) -> None:
    temp = catalog.put("1", retention_policy="temporary", ttl_days=30)
    perm = catalog.put("2")
    assert catalog.ids(retention_policy="temporary") == [temp]
    assert catalog.ids(retention_policy="permanent") == [perm]


def test_status_defaults_to_active(catalog: Catalog) -> None:
    active = catalog.put("1")
    deleted = catalog.put("2", status="deleted")
    expired = catalog.put("3", status="expired")
    assert catalog.ids() == [active]
    assert catalog.ids(status="deleted") == [deleted]
    assert catalog.ids(status="expired") == [expired]
    catalog.search(expect=400, status="gone")


def test_size_range_and_contradiction(catalog: Catalog) -> None:
    small, mid, big = (catalog.put(str(s), size=s) for s in (10, 500, 9000))
    assert set(catalog.ids(min_size=10, max_size=500)) == {small, mid}  # inclusive
    assert catalog.ids(min_size=501) == [big]
    assert catalog.ids(max_size=9) == []
    bad = catalog.search(expect=400, min_size=600, max_size=500)
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    catalog.search(expect=400, min_size=-1)


def test_date_range_and_contradiction(catalog: Catalog) -> None:
    t0 = datetime(2030, 5, 1, tzinfo=UTC)
    old = catalog.put("old", uploaded_at=t0, updated_at=t0)
    new = catalog.put("new", uploaded_at=t0 + timedelta(days=2), updated_at=t0 + timedelta(days=2))
    assert catalog.ids(uploaded_after=(t0 + timedelta(days=1)).isoformat()) == [new]
    assert catalog.ids(uploaded_before=(t0 + timedelta(days=1)).isoformat()) == [old]
    both = catalog.ids(
        uploaded_after=t0.isoformat(), uploaded_before=(t0 + timedelta(days=2)).isoformat()
    )
    assert set(both) == {old, new}  # both bounds inclusive
    bad = catalog.search(
        expect=400,
        uploaded_after=(t0 + timedelta(days=1)).isoformat(),
        uploaded_before=t0.isoformat(),
    )
    assert bad["error"]["code"] == "VALIDATION_ERROR"


def test_sort_by_and_order(catalog: Catalog) -> None:
    b = catalog.put("b.txt", size=300)
    a = catalog.put("a.txt", size=100)
    c = catalog.put("c.txt", size=200)
    assert catalog.ids() == [c, a, b]  # uploaded_at desc by default
    assert catalog.ids(sort_order="asc") == [b, a, c]
    assert catalog.ids(sort_by="original_filename", sort_order="asc") == [a, b, c]
    assert catalog.ids(sort_by="size") == [b, c, a]
    assert catalog.ids(sort_by="size", sort_order="asc") == [a, c, b]
    assert catalog.search(expect=400, sort_by="relevance")["error"]["code"] == "VALIDATION_ERROR"
    catalog.search(expect=400, sort_by="colour")
    catalog.search(expect=400, sort_order="up")


def test_limit_offset_total_has_more(catalog: Catalog) -> None:
    made = [catalog.put(f"{n}.txt") for n in range(7)]
    newest_first = list(reversed(made))
    seen = []
    for offset in range(0, 7, 3):
        page = catalog.search(limit=3, offset=offset)
        assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == offset
        assert page["has_more"] == (offset + 3 < 7)
        assert page["total_relation"] == "eq"
        seen += [i["file_id"] for i in page["items"]]
    assert seen == newest_first
    past = catalog.search(limit=3, offset=50)
    assert past["items"] == [] and past["total"] == 7 and past["has_more"] is False
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        catalog.search(expect=400, **bad)
    catalog.search(expect=400, unknown_field=1)


def test_one_item_per_file_with_two_copies(catalog: Catalog) -> None:
    t = datetime(2025, 3, 1, tzinfo=UTC)
    fid = catalog.put("twice.txt", uploaded_at=t, updated_at=t, description="old words")
    other_se = catalog.se + "-b"
    later = t + timedelta(seconds=5)
    catalog.put("twice.txt", se=other_se, file_id=fid, uploaded_at=t, updated_at=later,
                version=2, description="new words")  # fmt: skip
    page = catalog.search()
    assert page["total"] == 1 and len(page["items"]) == 1
    item = page["items"][0]
    assert item["storage_element_id"] == other_se and item["version"] == 2  # the newest copy
    assert item["description"] == "new words"
    assert sorted(c["storage_element_id"] for c in item["copies"]) == sorted([catalog.se, other_se])
    # Filters look at the copy that speaks for the file, not at an older one.
    assert catalog.ids(query="new") == [fid]
    assert catalog.ids(query="old") == []


def test_a_live_copy_speaks_before_a_tombstone(catalog: Catalog) -> None:
    t = datetime(2025, 3, 1, tzinfo=UTC)
    fid = catalog.put("half.txt", uploaded_at=t, updated_at=t)
    catalog.put("half.txt", se=catalog.se + "-b", file_id=fid, uploaded_at=t,
                updated_at=t + timedelta(seconds=5), version=2, status="deleted")  # fmt: skip
    item = catalog.search()["items"][0]
    assert item["file_id"] == fid and item["status"] == "active"
    assert {c["status"] for c in item["copies"]} == {"active", "deleted"}
    assert catalog.ids(status="deleted") == []


def test_quarantined_rows_are_not_files(catalog: Catalog) -> None:
    fid = catalog.put("bad.txt")
    catalog.qm.sql("UPDATE catalog.files SET quarantined_at = now() WHERE file_id = $1", fid)
    assert catalog.ids() == []


def test_get_quick_search(catalog: Catalog) -> None:
    hit = catalog.put("falcon.txt", description="peregrine falcon", tags=["bird", "fast"])
    catalog.put("owl.txt", description="barn owl", tags=["bird"])
    with catalog.qm.client() as c:
        r = c.get("/api/v1/search", params={"q": "falcon", "uploaded_by": catalog.owner})
        assert r.status_code == 200, r.text
        assert [i["file_id"] for i in r.json()["items"]] == [hit]
        r = c.get("/api/v1/search", params=[("tags", "bird"), ("tags", "fast"),
                                            ("uploaded_by", catalog.owner)])  # fmt: skip
        assert [i["file_id"] for i in r.json()["items"]] == [hit]
        assert c.get("/api/v1/search", params={"limit": 0}).status_code == 400
        bad = c.get("/api/v1/search", params={"min_size": 5, "max_size": 1})
        assert bad.status_code == 400


def test_empty_body_is_a_default_search(search_qm: SearchQuery, catalog: Catalog) -> None:
    catalog.put("x")
    with search_qm.client() as c:
        r = c.post("/api/v1/search")
    assert r.status_code == 200, r.text
    assert r.json()["limit"] == 100 and r.json()["offset"] == 0


def test_auth_on_search(search_qm: SearchQuery) -> None:
    for method in ("GET", "POST"):
        r = httpx.request(method, f"{search_qm.url}/api/v1/search", json={})
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        with search_qm.client("storage:read") as c:
            r = c.request(method, "/api/v1/search", json={})
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
        r = httpx.request(
            method,
            f"{search_qm.url}/api/v1/search",
            json={},
            headers={"Authorization": "Bearer not.a.token"},
        )
        assert r.status_code == 401
