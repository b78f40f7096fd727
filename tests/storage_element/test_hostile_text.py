"""Issue 11, items 1 and 2 on a running SE: names are limited in bytes (long Cyrillic,
CJK and emoji names are stored, served and listed whole), and text that is not valid
(NUL, C0/C1 controls, lone surrogates, invalid UTF-8, CR LF) is a 400 naming the field
at every entry point, with nothing stored and the SE still ready afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes, unquote

import httpx
import pytest

from tests.storage_element.test_bad_input import (
    assert_error,
    assert_nothing_kept,
    mp_headers,
    multipart,
    state,
)
from tests.storage_element.test_catalog import _assert_catalog_equals_attrs
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest

# 255 characters each: 510, 765 and 1020 bytes of UTF-8 (the limit is 1024 bytes).
LONG_NAMES = {
    "cyrillic": "Отчёт" * 50 + ".docx",
    "cjk": "報告書類" * 62 + "中文字.pdf",
    "emoji": "😀" * 251 + ".txt",
}
TOO_LONG = "😀" * 256 + "a"  # 1025 bytes

# Bad text as it travels: raw bytes (query strings, form fields) or a JSON string.
BAD_BYTES = {
    "nul": b"a\x00b",
    "c0": b"a\x01b",
    "esc": b"a\x1bb",
    "c1": "a\x85b".encode(),
    "crlf": b"a\r\nb",
    "lone_surrogate": b"a\xed\xa0\x80b",  # U+D800 as (invalid) UTF-8
    "invalid_utf8": b"a\xff\xfeb",
}
BAD_JSON = {
    "nul": "a\\u0000b",
    "c0": "a\\u0001b",
    "c1": "a\\u0085b",
    "crlf": "a\\r\\nb",
    "lone_surrogate": "a\\ud800b",
    "lone_low_surrogate": "a\\udc00b",
}
# Allowed in a description only.
MULTILINE_OK = {"crlf"}


@pytest.fixture(scope="module")
def se(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: TestIssuer,
    database: TestDatabase,
    se_backend: SEBackend,
) -> Iterator[StorageElementUnderTest]:
    s = StorageElementUnderTest(
        tmp_path_factory.mktemp("hostile_text"), issuer, database.url, "edit", None, se_backend
    )
    s.start()
    yield s
    s.process.stop()


@pytest.fixture(scope="module")
def existing(se: StorageElementUnderTest) -> dict[str, Any]:
    with se.client() as c:
        r = c.post("/api/v1/files", content=b"existing", params={"filename": "existing.txt"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def assert_ready(se: StorageElementUnderTest) -> None:
    r = httpx.get(f"{se.url}/health/ready", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    with se.client() as c:
        status = c.get("/api/v1/maintenance/status").json()
    assert status["catalog"]["owed_updates"] == 0, status
    assert status["catalog"].get("refused", 0) == 0, status


def assert_refused(r: httpx.Response, field: str) -> None:
    error = assert_error(r, 400, "VALIDATION_ERROR")
    assert error["error"]["details"]["field"] == field, error


def raw_query(**fields: bytes | str) -> str:
    """A query string with every byte as given (httpx would encode text as UTF-8)."""
    out = []
    for name, value in fields.items():
        raw = value if isinstance(value, bytes) else value.encode()
        out.append(f"{name}={quote_from_bytes(raw, safe='')}")
    return "&".join(out)


def disposition_filename(header: str) -> str:
    """The RFC 6266 ``filename*`` (RFC 5987 UTF-8) of a Content-Disposition."""
    assert header.startswith("attachment; ")
    assert "\r" not in header and "\n" not in header
    header.encode("latin-1")  # a header value carries no raw non-latin-1 text
    star = [p.strip() for p in header.split(";") if p.strip().startswith("filename*=")]
    assert len(star) == 1, header
    value = star[0].removeprefix("filename*=")
    assert value.startswith("UTF-8''"), header
    return unquote(value.removeprefix("UTF-8''"), errors="strict")


# -- long names ----------------------------------------------------------------------------
@pytest.mark.parametrize("script", sorted(LONG_NAMES))
@pytest.mark.parametrize("how", ["raw", "multipart"])
def test_long_names_are_stored_and_served_whole(
    se: StorageElementUnderTest, script: str, how: str
) -> None:
    name = LONG_NAMES[script]
    assert len(name) == 255 and len(name.encode()) <= 1024
    data = f"{script} {how} {uuid.uuid4()}".encode()
    with se.client() as c:
        if how == "raw":
            r = c.post("/api/v1/files", content=data, params={"filename": name})
        else:
            r = c.post("/api/v1/files", files={"file": (name, data, "text/plain")})
        assert r.status_code == 201, r.text
        meta = r.json()
        assert meta["original_filename"] == name
        d = c.get(f"/api/v1/files/{meta['file_id']}/download")
        assert d.status_code == 200 and d.content == data
        assert disposition_filename(d.headers["content-disposition"]) == name
        assert c.get(f"/api/v1/files/{meta['file_id']}").json()["original_filename"] == name
    # The storage name is cut on character boundaries to 200 bytes at most.
    blob = next(b for b in se.blobs() if meta["file_id"][:8] in b.name)
    assert len(blob.name.encode()) <= 200
    assert_ready(se)


@pytest.mark.parametrize("how", ["raw", "multipart"])
def test_name_over_the_byte_limit_is_refused_not_cut(se: StorageElementUnderTest, how: str) -> None:
    before = state(se)
    with se.client() as c:
        if how == "raw":
            r = c.post("/api/v1/files", content=b"x", params={"filename": TOO_LONG})
        else:
            r = c.post("/api/v1/files", files={"file": (TOO_LONG, b"x")})
    assert_refused(r, "filename")
    assert_nothing_kept(se, before)


@pytest.mark.local_only  # upload sessions need the local backend
def test_long_name_through_an_upload_session(se: StorageElementUnderTest) -> None:
    name = LONG_NAMES["emoji"]
    with se.client() as c:
        r = c.post("/api/v1/uploads", json={"length": 3, "filename": name})
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        r = c.patch(
            f"/api/v1/uploads/{sid}",
            params={"offset": 0},
            content=b"abc",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        r = c.post(f"/api/v1/uploads/{sid}/complete")
        assert r.status_code == 201, r.text
        assert r.json()["original_filename"] == name
        d = c.get(f"/api/v1/files/{sid}/download")
        assert disposition_filename(d.headers["content-disposition"]) == name


# -- invalid text, upload ------------------------------------------------------------------
def _field_value(field: str, bad: bytes) -> tuple[str, bytes]:
    """(form/query name, value) that puts ``bad`` where ``field`` is read."""
    if field == "tags":
        return "tags", bad
    if field == "metadata_key":
        return "metadata", b'{"' + bad + b'": "v"}'
    if field == "metadata_value":
        return "metadata", b'{"k": "' + bad + b'"}'
    return field, bad


FIELDS = ["filename", "description", "tags", "metadata_key", "metadata_value"]


def _expected(field: str) -> str:
    return "metadata" if field.startswith("metadata") else field


def _cases() -> list[tuple[str, str]]:
    return [
        (field, kind)
        for field in FIELDS
        for kind in sorted(BAD_BYTES)
        if not (field == "description" and kind in MULTILINE_OK)
    ]


@pytest.mark.parametrize(("field", "kind"), _cases())
@pytest.mark.parametrize("how", ["query", "multipart"])
def test_invalid_text_in_a_field_is_400(
    se: StorageElementUnderTest, how: str, field: str, kind: str
) -> None:
    name, value = _field_value(field, BAD_BYTES[kind])
    before = state(se)
    with se.client() as c:
        if how == "query":
            fields: dict[str, bytes | str] = {"filename": "ok.txt", name: value}
            query = raw_query(**fields)
            r = c.post(
                f"/api/v1/files?{query}",
                content=b"data",
                headers={"Content-Type": "application/octet-stream"},
            )
        else:
            boundary = uuid.uuid4().hex.encode()
            parts = [(name, None, value), ("file", b"ok.txt", b"data")]
            if field == "filename":  # the part's own filename header
                parts = [("file", value, b"data")]
            r = c.post(
                "/api/v1/files", content=multipart(boundary, parts), headers=mp_headers(boundary)
            )
    if how == "multipart" and field == "filename" and kind == "crlf":
        # CR LF ends the part's header line: the body is malformed (a 400 without a field).
        assert_error(r, 400, "VALIDATION_ERROR")
    else:
        # (A raw control byte inside metadata's JSON is not JSON: refused all the same.)
        assert_refused(r, _expected(field))
    assert_nothing_kept(se, before)
    assert_ready(se)


def test_description_keeps_tabs_and_line_breaks(se: StorageElementUnderTest) -> None:
    text = "line 1\r\nline 2\n\tindented"
    with se.client() as c:
        r = c.post("/api/v1/files", content=b"d", params={"filename": "d.txt", "description": text})
        assert r.status_code == 201, r.text
        assert r.json()["description"] == text


BAD_CONTENT_TYPES = [
    b"text/plain\x00",
    b"text/plain\x01",
    b"text/plain; x=\x85",
    b"text/plain\xff",
    b"text/plain; x=\xed\xa0\x80",
    b"text",
    b"text/plain; charset",
    b"text/plain\tx",
]


@pytest.mark.parametrize("value", BAD_CONTENT_TYPES)
def test_invalid_content_type_in_a_part_header_is_400(
    se: StorageElementUnderTest, value: bytes
) -> None:
    boundary = uuid.uuid4().hex.encode()
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.txt"'
        b"\r\nContent-Type: " + value + b"\r\n\r\ndata\r\n--" + boundary + b"--\r\n"
    )
    before = state(se)
    with se.client() as c:
        r = c.post("/api/v1/files", content=body, headers=mp_headers(boundary))
    assert_refused(r, "content_type")
    assert_nothing_kept(se, before)
    assert_ready(se)


def test_cr_lf_in_a_part_header_is_400(se: StorageElementUnderTest) -> None:
    """A CR LF inside a part's content type ends the header line: what follows is not a
    header, so the body is malformed (still a 400, nothing stored)."""
    boundary = uuid.uuid4().hex.encode()
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.txt"'
        b"\r\nContent-Type: text/plain\r\nnot a header\r\n\r\ndata\r\n--" + boundary + b"--\r\n"
    )
    before = state(se)
    with se.client() as c:
        r = c.post("/api/v1/files", content=body, headers=mp_headers(boundary))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert_nothing_kept(se, before)


@pytest.mark.parametrize(
    "value", [b"text/plain; x=\xff", b"text/plain; x=\x85", b"text/plain\tx", b"nonsense"]
)
def test_invalid_content_type_header_of_a_raw_upload_is_400(
    se: StorageElementUnderTest, value: bytes
) -> None:
    """What a client can put in a header at all (HTTP itself has no NUL or CR LF there)."""
    before = state(se)
    with se.client() as c:
        r = c.post(
            "/api/v1/files",
            content=b"x",
            params={"filename": "a"},
            headers={b"Content-Type": value},
        )
    assert_refused(r, "content_type")
    assert_nothing_kept(se, before)


# -- invalid text, PATCH and upload sessions -----------------------------------------------
def _json_cases() -> list[tuple[str, str]]:
    return [
        (field, kind)
        for field in ("description", "tags", "metadata_key", "metadata_value")
        for kind in sorted(BAD_JSON)
        if not (field == "description" and kind in MULTILINE_OK)
    ]


def _json_field(field: str, bad: str) -> str:
    if field == "description":
        return f'"description": "{bad}"'
    if field == "tags":
        return f'"tags": ["ok", "{bad}"]'
    if field == "metadata_key":
        return f'"metadata": {{"{bad}": "v"}}'
    return f'"metadata": {{"k": "{bad}"}}'


@pytest.mark.parametrize(("field", "kind"), _json_cases())
def test_invalid_text_in_a_patch_is_400(
    se: StorageElementUnderTest, existing: dict[str, Any], field: str, kind: str
) -> None:
    fid = existing["file_id"]
    with se.client() as c:
        version = c.get(f"/api/v1/files/{fid}").json()["version"]
        r = c.patch(
            f"/api/v1/files/{fid}",
            content="{" + _json_field(field, BAD_JSON[kind]) + "}",
            headers={"Content-Type": "application/json"},
        )
        assert_refused(r, _expected(field))
        after = c.get(f"/api/v1/files/{fid}").json()
    assert after["version"] == version
    assert_ready(se)


def test_patch_with_invalid_utf8_is_400(
    se: StorageElementUnderTest, existing: dict[str, Any]
) -> None:
    with se.client() as c:
        r = c.patch(
            f"/api/v1/files/{existing['file_id']}",
            content=b'{"description": "a\xffb"}',
            headers={"Content-Type": "application/json"},
        )
    assert_error(r, 400, "VALIDATION_ERROR")


@pytest.mark.local_only  # upload sessions need the local backend
@pytest.mark.parametrize(
    ("field", "kind"),
    [(f, k) for f, k in _json_cases() if k in ("nul", "lone_surrogate", "c1")]
    + [("filename", k) for k in sorted(BAD_JSON)]
    + [("content_type", k) for k in sorted(BAD_JSON)],
)
def test_invalid_text_in_an_upload_session_is_400(
    se: StorageElementUnderTest, field: str, kind: str
) -> None:
    bad = BAD_JSON[kind]
    if field in ("filename", "content_type"):
        value = f"text/plain; x={bad}" if field == "content_type" else f"name{bad}.txt"
        member = f'"{field}": "{value}"'
    else:
        member = _json_field(field, bad)
    sessions = se.data_dir / "uploads"
    before = sorted(sessions.iterdir()) if sessions.exists() else []
    with se.client() as c:
        r = c.post(
            "/api/v1/uploads",
            content='{"length": 3, ' + member + "}",
            headers={"Content-Type": "application/json"},
        )
    assert_refused(r, _expected(field))
    assert (sorted(sessions.iterdir()) if sessions.exists() else []) == before
    assert_ready(se)


def test_refusals_leave_the_catalog_whole(
    se: StorageElementUnderTest, database: TestDatabase
) -> None:
    """Refused requests next to long names: the catalog holds exactly the attrs (no row
    was refused by PostgreSQL, none is owed) and every stored text is UTF-8."""
    with se.client() as c:
        for name in LONG_NAMES.values():
            r = c.post("/api/v1/files", content=b"n", params={"filename": name, "tags": name[:60]})
            assert r.status_code == 201, r.text
        for bad in BAD_BYTES.values():
            query = raw_query(filename="x.txt", description=bad + b"\x00")
            assert c.post(f"/api/v1/files?{query}", content=b"x").status_code == 400
        files = c.get("/api/v1/files", params={"limit": 1000}).json()["items"]
    assert len(files) >= len(LONG_NAMES)
    for meta in files:
        json.dumps(meta, ensure_ascii=False).encode()  # every stored text is UTF-8
    assert_ready(se)
    _assert_catalog_equals_attrs(database, se)
