"""Issue 13 finding 3 at the query module: NUL, lone surrogates, a 4 MB full-text query
or a huge offset are the client's 400, never 503 "the catalog cannot answer now" (which
clients and load balancers retry, and alerts fire on) — against a running query."""

from __future__ import annotations

import json
from typing import Any

import httpx

from artstore.common.bounds import QUERY_MAX_BYTES
from artstore.common.pagination import MAX_OFFSET
from tests.query.conftest import SearchQuery

_JSON = {"Content-Type": "application/json"}


def _is_400(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text[:500]
    assert r.json()["error"]["code"] == "VALIDATION_ERROR", r.text[:500]


def _post(c: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    # json.dumps writes a lone surrogate as the escape \ud800, as a hostile client would.
    return c.post("/api/v1/search", content=json.dumps(body), headers=_JSON)


def test_nul_and_surrogates_in_any_text_filter_are_400(search_qm: SearchQuery) -> None:
    fields = ("query", "filename", "file_extension", "content_type", "uploaded_by")
    with search_qm.client() as c:
        for field in fields:
            for bad in ("a\x00b", "\ud800", "x\udfffy"):
                _is_400(_post(c, {field: bad}))
        for bad in ("a\x00", "\ud800"):
            _is_400(_post(c, {"tags": ["ok", bad]}))
            _is_400(_post(c, {"metadata": {"k": bad}}))
            _is_400(_post(c, {"metadata": {bad: "v"}}))
        for name in ("q", "filename", "file_extension", "content_type", "uploaded_by", "tags"):
            _is_400(c.get("/api/v1/search", params={name: "a\x00b"}))


def test_a_four_megabyte_query_is_refused_not_503(search_qm: SearchQuery) -> None:
    with search_qm.client() as c:
        # Over the body limit: 413 before it is read.
        r = _post(c, {"query": "word " * (800 * 1024)})
        assert r.status_code == 413, r.text[:500]
        assert r.json()["error"]["code"] == "BODY_TOO_LARGE"
        # Within the body limit, over the query's own bound: 400.
        _is_400(_post(c, {"query": "word " * (100 * 1024)}))
        _is_400(c.get("/api/v1/search", params={"q": "w" * (QUERY_MAX_BYTES + 1)}))
        r = _post(c, {"query": "word " * (QUERY_MAX_BYTES // 5)})
        assert r.status_code == 200, r.text[:500]


def test_huge_numbers_are_400(search_qm: SearchQuery) -> None:
    with search_qm.client() as c:
        for offset in (2**63, 2**64, MAX_OFFSET + 1):
            _is_400(_post(c, {"offset": offset}))
            _is_400(c.get("/api/v1/search", params={"offset": offset}))
        for field in ("min_size", "max_size"):
            _is_400(_post(c, {field: 2**63}))
            _is_400(c.get("/api/v1/search", params={field: 2**70}))
        r = _post(c, {"offset": MAX_OFFSET, "max_size": 2**63 - 1})
        assert r.status_code == 200, r.text[:500]
        assert r.json()["items"] == []


def test_openapi_documents_400_not_422(search_qm: SearchQuery) -> None:
    spec = httpx.get(f"{search_qm.url}/openapi.json", timeout=30).json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            assert "400" in op["responses"], (method, path)
