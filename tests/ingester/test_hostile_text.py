"""Issue 11, items 1 and 2 through the ingester: 255-character Cyrillic, CJK and emoji
names go through upload (multipart and raw), batch, tus, finalize and rebuild-index and
come back whole; invalid text in any field is refused by the ingester itself (400
naming the field) before anything reaches a storage element."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

import httpx
import pytest

from tests.ingester.conftest import client, se_bytes, se_meta
from tests.storage_element.test_catalog import _assert_catalog_equals_attrs
from tests.storage_element.test_hostile_text import (
    BAD_BYTES,
    LONG_NAMES,
    TOO_LONG,
    disposition_filename,
)
from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


@dataclass
class Setup:
    edit: StorageElementUnderTest
    rw1: StorageElementUnderTest
    rw2: StorageElementUnderTest
    ingester: ServiceProcess

    @property
    def ses(self) -> tuple[StorageElementUnderTest, ...]:
        return (self.edit, self.rw1, self.rw2)

    def stored(self) -> list[Any]:
        """Everything every SE holds: attrs and upload sessions."""
        out: list[Any] = []
        for se in self.ses:
            out += se.attrs()
            sessions = se.data_dir / "uploads"
            out += sorted(sessions.iterdir()) if sessions.exists() else []
        return out


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    edit = system.add_se("edit")
    rw1, rw2 = system.add_se("rw"), system.add_se("rw")
    yield Setup(edit, rw1, rw2, system.start_ingester(IG_REPLICAS="2"))


def assert_refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR", error
    assert error["details"]["field"] == field, error


def assert_served_whole(se: StorageElementUnderTest, meta: dict[str, Any], name: str) -> None:
    assert meta["original_filename"] == name
    copy = se_meta(se, meta["file_id"])
    assert copy is not None and copy["original_filename"] == name
    with se.client() as c:
        d = c.get(f"/api/v1/files/{meta['file_id']}/download")
    assert d.status_code == 200, d.text
    assert disposition_filename(d.headers["content-disposition"]) == name


def tus_metadata(**items: str | bytes) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()}"
        for k, v in items.items()
    )


def tus_upload(c: httpx.Client, data: bytes, **meta: str | bytes) -> httpx.Response:
    r = c.post(
        "/api/v1/uploads",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": tus_metadata(**meta)},
    )
    if r.status_code != 201:
        return r
    path = urlsplit(r.headers["location"]).path
    return c.patch(path, content=data, headers={**OCTETS, "Upload-Offset": "0"})


# -- long names ----------------------------------------------------------------------------
@pytest.mark.parametrize("script", sorted(LONG_NAMES))
def test_long_names_through_every_way_in(setup: Setup, user_token: str, script: str) -> None:
    name = LONG_NAMES[script]
    with client(setup.ingester, user_token) as c:
        r = c.post("/api/v1/files/upload", files={"file": (name, b"multipart", "text/plain")})
        assert r.status_code == 201, r.text
        assert_served_whole(setup.edit, r.json(), name)

        r = c.put("/api/v1/files/upload", params={"filename": name}, content=b"raw")
        assert r.status_code == 201, r.text
        assert_served_whole(setup.edit, r.json(), name)

        r = c.post(
            "/api/v1/files/batch",
            files=[("file", (name, b"batch one")), ("file", ("second.txt", b"two"))],
        )
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [i["status"] for i in items] == ["stored", "stored"], items
        assert_served_whole(setup.edit, items[0]["file"], name)

        r = tus_upload(c, b"resumable", filename=name, filetype="text/plain")
        assert r.status_code == 204, r.text
        fid = r.headers["x-file-id"]
        meta = se_meta(setup.edit, fid)
        assert meta is not None
        assert_served_whole(setup.edit, meta, name)

        # Finalize: the permanent copies on both rw SEs keep the whole name.
        r = c.post(f"/api/v1/files/{fid}/finalize")
        assert r.status_code == 200, r.text
        assert r.json()["original_filename"] == name
    for se in (setup.rw1, setup.rw2):
        assert_served_whole(se, {"file_id": fid, "original_filename": name}, name)
        assert se_bytes(se, fid) == b"resumable"


def test_rebuild_index_with_long_names(
    setup: Setup, user_token: str, system_db: TestDatabase
) -> None:
    with client(setup.ingester, user_token) as c:
        for name in LONG_NAMES.values():
            r = c.put("/api/v1/files/upload", params={"filename": name}, content=b"r")
            assert r.status_code == 201, r.text
    se = setup.edit
    with se.client() as c:
        r = c.post("/api/v1/maintenance/rebuild-index")
        assert r.status_code == 202, r.text
        job = r.json()["job_id"]
        deadline = time.monotonic() + 60
        while True:  # the job's own state, not a fixed wait
            rebuild = c.get("/api/v1/maintenance/status").json()["rebuild"]
            if rebuild["job_id"] == job and rebuild["state"] in ("done", "failed"):
                break
            assert time.monotonic() < deadline, rebuild
            time.sleep(0.2)
    assert rebuild["state"] == "done", rebuild
    assert not rebuild.get("refused"), rebuild
    _assert_catalog_equals_attrs(system_db, se)


def test_name_over_the_byte_limit_is_refused_everywhere(setup: Setup, user_token: str) -> None:
    before = setup.stored()
    with client(setup.ingester, user_token) as c:
        assert_refused(c.post("/api/v1/files/upload", files={"file": (TOO_LONG, b"x")}), "filename")
        assert_refused(
            c.put("/api/v1/files/upload", params={"filename": TOO_LONG}, content=b"x"), "filename"
        )
        r = c.post("/api/v1/files/batch", files={"file": (TOO_LONG, b"x")})
        assert r.status_code == 200, r.text
        item = r.json()["items"][0]
        assert item["status"] == "failed" and item["error"]["code"] == "VALIDATION_ERROR"
        assert item["error"]["details"]["field"] == "filename"
        assert_refused(tus_upload(c, b"x", filename=TOO_LONG), "filename")
    assert setup.stored() == before


# -- invalid text --------------------------------------------------------------------------
def _field_value(field: str, bad: bytes) -> tuple[str, bytes]:
    if field == "metadata_key":
        return "metadata", b'{"' + bad + b'": "v"}'
    if field == "metadata_value":
        return "metadata", b'{"k": "' + bad + b'"}'
    return field, bad


FIELDS = ["filename", "description", "tags", "metadata_key", "metadata_value"]
CASES = [
    (f, k)
    for f in FIELDS
    for k in sorted(BAD_BYTES)
    if not (f == "description" and k == "crlf")  # a description may hold line breaks
]


def _expected(field: str) -> str:
    return "metadata" if field.startswith("metadata") else field


@pytest.mark.parametrize(("field", "kind"), CASES)
def test_invalid_text_is_refused_before_any_se_sees_it(
    setup: Setup, user_token: str, field: str, kind: str
) -> None:
    name, value = _field_value(field, BAD_BYTES[kind])
    expected = _expected(field)
    before = setup.stored()
    with client(setup.ingester, user_token) as c:
        # Raw body, fields in the query string.
        others = {"filename": b"ok.txt"} if field != "filename" else {}
        query = "&".join(
            f"{k}={quote_from_bytes(v, safe='')}" for k, v in {**others, name: value}.items()
        )
        assert_refused(c.put(f"/api/v1/files/upload?{query}", content=b"raw"), expected)

        # Multipart: a form field, or the file part's own filename header.
        boundary = uuid.uuid4().hex
        head = f"--{boundary}\r\nContent-Disposition: form-data; ".encode()
        if field == "filename":
            form = head + b'name="file"; filename="' + value + b'"\r\n\r\ndata\r\n'
        else:
            form = head + f'name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
            form += head + b'name="file"; filename="ok.txt"\r\n\r\ndata\r\n'
        form += f"--{boundary}--\r\n".encode()
        mp = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        r = c.post("/api/v1/files/upload", content=form, headers=mp)
        if field == "filename" and kind == "crlf":
            assert r.status_code == 400, r.text  # CR LF broke the part header: malformed
        else:
            assert_refused(r, expected)

        # Batch: a bad field fails the parts after it; a bad part header fails its part.
        r = c.post("/api/v1/files/batch", content=form, headers=mp)
        if field != "filename" and kind in ("invalid_utf8", "lone_surrogate"):
            # A form field that is not UTF-8 cannot be read: refused before any part.
            assert_refused(r, expected)
        elif field == "filename" and kind == "crlf":
            assert r.status_code == 400 or r.json()["stored"] == 0, r.text
        else:
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["stored"] == 0 and body["failed"] == 1, body
            error = body["items"][0]["error"]
            assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == expected

        # tus: Upload-Metadata (base64, so every byte can be sent).
        tus_key = "filename" if field == "filename" else name
        assert_refused(tus_upload(c, b"tus", **{tus_key: value}), expected)
    assert setup.stored() == before
    for se in setup.ses:
        r = httpx.get(f"{se.url}/health/ready", timeout=10)
        assert r.json()["status"] == "ok", r.text


@pytest.mark.parametrize(
    "value", [b"text/plain\x00", b"text/plain\r\nX-Evil: 1", b"text/plain\x85", b"no type", b"\xff"]
)
def test_invalid_tus_filetype_is_400(setup: Setup, user_token: str, value: bytes) -> None:
    before = setup.stored()
    with client(setup.ingester, user_token) as c:
        assert_refused(tus_upload(c, b"t", filename=b"ok.txt", filetype=value), "filetype")
    assert setup.stored() == before


@pytest.mark.parametrize(
    "value", [b"text/plain\x00", b"text/plain\x85", b"text/plain; x=\xed\xa0\x80", b"text"]
)
def test_invalid_part_content_type_is_400(setup: Setup, user_token: str, value: bytes) -> None:
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            "Content-Type: "
        ).encode()
        + value
        + f"\r\n\r\ndata\r\n--{boundary}--\r\n".encode()
    )
    mp = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    before = setup.stored()
    with client(setup.ingester, user_token) as c:
        assert_refused(c.post("/api/v1/files/upload", content=form, headers=mp), "content_type")
        r = c.post("/api/v1/files/batch", content=form, headers=mp)
        assert r.status_code == 200, r.text
        assert r.json()["items"][0]["error"]["details"]["field"] == "content_type"
        raw = c.put(
            "/api/v1/files/upload",
            params={"filename": "a.txt"},
            content=b"x",
            headers={b"Content-Type": b"text/plain; x=\xff"},
        )
        assert_refused(raw, "content_type")
    assert setup.stored() == before
