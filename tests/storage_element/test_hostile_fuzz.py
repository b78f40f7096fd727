"""The hostile-input run of issue 11: a few hundred random and hostile requests against a
running SE's file routes (upload raw and multipart, PATCH, list, get, download, delete),
every answer below 500; then the SE is stopped and started again on the same data: it
starts, ``maintenance/status`` shows nothing owed, refused or set aside, and the catalog
equals the attrs row by row.

Bounded and reproducible: ``derandomize=True`` (the same examples on every run, so CI
cannot be flaky), ``max_examples=200``, no deadline (a slow CI host is not a failure).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage_element.test_catalog import _assert_catalog_equals_attrs
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest

HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "a\r\nX-Evil: 1",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",
    "a\udfffb",
    "\ufeff",
    "\u202eexe.txt",
    "\ufffd",
    "..",
    "../../etc/passwd",
    "C:\\x\\..\\y",
    "😀" * 300,
    "ж" * 600,
    "中" * 400,
    "a" * 5000,
    "%00",
    "%",
    "{",
    "[",
    "[1,",
    "null",
    '{"a":1}',
    '{"\\u0000":"v"}',
    '["\\ud800"]',
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "true",
]
FIELD_NAMES = [
    "filename",
    "description",
    "tags",
    "metadata",
    "retention_policy",
    "ttl_days",
    "file_id",
    "x",
    "",
    "tags[]",
]
HOSTILE_IDS = [
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "00000000-0000-0000-0000-00000000000g",
    "..",
    "%2e%2e",
    "a" * 300,
    "123",
    "",
]


def _bytes(text: str) -> bytes:
    # Lone surrogates travel as the (invalid) UTF-8 a careless client would send.
    return text.encode("utf-8", "surrogatepass")


hostile_bytes = st.one_of(
    st.sampled_from(HOSTILE_TEXT).map(_bytes),
    st.binary(max_size=40),
    st.text(max_size=40).map(_bytes),
)
# Bytes a header value can carry at all (HTTP has no CR, LF or NUL there).
header_bytes = st.one_of(
    st.sampled_from(
        [b"text/plain", b"text/plain; x=\xff", b"\x85", b"a/b;;;", b"*/*", b"text/plain\tx"]
    ),
    st.binary(min_size=1, max_size=40).map(
        lambda b: bytes(c for c in b if c == 9 or 32 <= c != 127).strip() or b"x"
    ),
)
query = st.lists(st.tuples(st.sampled_from(FIELD_NAMES), hostile_bytes), max_size=6)
small_int = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(HOSTILE_TEXT))


def _query(pairs: list[tuple[str, bytes]]) -> str:
    return "&".join(f"{quote_from_bytes(_bytes(k))}={quote_from_bytes(v)}" for k, v in pairs)


def _multipart(fields: list[tuple[str, bytes]], filename: bytes, ctype: bytes | None) -> bytes:
    boundary = b"fuzzboundary"
    out = bytearray()
    for name, value in fields:
        out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="'
        out += _bytes(name) + b'"\r\n\r\n' + value + b"\r\n"
    out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="'
    out += filename + b'"\r\n'
    if ctype is not None:
        out += b"Content-Type: " + ctype + b"\r\n"
    out += b"\r\nfuzz data\r\n--" + boundary + b"--\r\n"
    return bytes(out)


json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=30),
        st.sampled_from(HOSTILE_TEXT),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(HOSTILE_TEXT)), inner),
    ),
    max_leaves=8,
)
patch_body = st.one_of(
    st.dictionaries(st.sampled_from(["description", "tags", "metadata", "x"]), json_values).map(
        lambda d: json.dumps(d).encode()  # ensure_ascii: lone surrogates as \\udXXX escapes
    ),
    hostile_bytes,
)


@st.composite
def requests(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    """One request: method, path, and what goes with it."""
    target = draw(
        st.one_of(st.sampled_from(ids), st.sampled_from(HOSTILE_IDS), st.text(max_size=20))
    )
    path_id = quote_from_bytes(_bytes(target), safe="")
    kind = draw(
        st.sampled_from(
            ["upload_raw", "upload_multipart", "patch", "list", "get", "download", "delete"]
        )
    )
    if kind == "upload_raw":
        headers = {}
        if draw(st.booleans()):
            headers["Content-Type"] = draw(header_bytes)
        return {
            "method": "POST",
            "url": f"/api/v1/files?{_query(draw(query))}",
            "content": draw(st.binary(max_size=64)),
            "headers": headers,
        }
    if kind == "upload_multipart":
        body = _multipart(
            draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES), hostile_bytes), max_size=4)),
            draw(hostile_bytes),
            draw(st.one_of(st.none(), hostile_bytes)),
        )
        cut = draw(st.one_of(st.none(), st.integers(0, len(body))))
        return {
            "method": "POST",
            "url": f"/api/v1/files?{_query(draw(query))}",
            "content": body if cut is None else body[:cut],
            "headers": {"Content-Type": "multipart/form-data; boundary=fuzzboundary"},
        }
    if kind == "patch":
        return {
            "method": "PATCH",
            "url": f"/api/v1/files/{path_id}",
            "content": draw(patch_body),
            "headers": {"Content-Type": "application/json"},
        }
    if kind == "list":
        params = {
            k: draw(small_int)
            for k in draw(st.sets(st.sampled_from(["limit", "offset", "status"])))
        }
        url = "/api/v1/files?" + "&".join(
            f"{k}={quote_from_bytes(_bytes(v))}" for k, v in params.items()
        )
        return {"method": "GET", "url": url, "headers": {}}
    if kind == "download":
        headers = {
            name: draw(header_bytes)
            for name in draw(st.sets(st.sampled_from(["Range", "If-None-Match", "If-Range"])))
        }
        method = draw(st.sampled_from(["GET", "HEAD"]))
        return {"method": method, "url": f"/api/v1/files/{path_id}/download", "headers": headers}
    method = "GET" if kind == "get" else "DELETE"
    return {"method": method, "url": f"/api/v1/files/{path_id}", "headers": {}}


@pytest.fixture(scope="module")
def se(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: TestIssuer,
    database: TestDatabase,
    se_backend: SEBackend,
) -> Iterator[StorageElementUnderTest]:
    # An edit SE: every route (delete too) is open to the fuzzer.
    s = StorageElementUnderTest(
        tmp_path_factory.mktemp("fuzz"), issuer, database.url, "edit", None, se_backend
    )
    s.start()
    yield s
    s.process.stop()


def _status(se: StorageElementUnderTest) -> dict[str, Any]:
    with se.client() as c:
        r = c.get("/api/v1/maintenance/status")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_hostile_requests_never_500_and_the_se_restarts_whole(
    se: StorageElementUnderTest, database: TestDatabase
) -> None:
    ids = []
    with se.client() as c:
        for i in range(3):
            r = c.post("/api/v1/files", content=b"seed", params={"filename": f"seed{i}.txt"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["file_id"])
    answers: dict[int, int] = {}

    with se.client() as c:

        @settings(
            max_examples=200,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(requests(ids))
        def one(req: dict[str, Any]) -> None:
            try:
                r = c.request(
                    req["method"],
                    req["url"],
                    content=req.get("content"),
                    headers=req["headers"],
                )
            except httpx.LocalProtocolError:
                return  # httpx itself would not send it
            answers[r.status_code] = answers.get(r.status_code, 0) + 1
            assert r.status_code < 500, (req, r.status_code, r.text)
            if r.status_code >= 400 and req["method"] != "HEAD":
                error = r.json()["error"]
                # No answer ever carries SQL text (architecture §10).
                assert "INSERT" not in r.text and "asyncpg" not in r.text, error

        one()
    assert sum(answers.values()) >= 150, answers  # most requests were really sent
    assert any(s < 300 for s in answers) and any(s >= 400 for s in answers), answers

    before = _status(se)
    assert before["catalog"]["owed_updates"] == 0, before
    se.restart()
    r = httpx.get(f"{se.url}/health/ready", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    status = _status(se)
    assert status["catalog"]["owed_updates"] == 0, status
    assert status["catalog"].get("refused", 0) == 0, status
    assert status["wal"]["pending"] == 0, status
    assert not status["wal"].get("failed"), status
    assert status.get("recovery", {}).get("set_aside", 0) == 0, status
    _assert_catalog_equals_attrs(database, se)
