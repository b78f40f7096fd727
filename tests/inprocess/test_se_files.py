"""A storage element's file API in-process (memory backend, real catalog): upload, get,
download with Range and conditions, patch, delete, list, and the validation errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.inprocess.conftest import InProcessSE, SEMaker, bearer
from tests.inprocess.helpers import assert_error, download_url, sha256_hex, upload
from tests.support.issuer import TestIssuer

SAMPLE = bytes(range(256)) * 16  # 4096 bytes


@pytest.fixture
async def sample(se: InProcessSE) -> dict[str, Any]:
    return await upload(se.client, SAMPLE, "sample.bin")


async def test_round_trip_raw_and_multipart(se: InProcessSE) -> None:
    c = se.client
    meta = await upload(c, b"hello world" * 100, "hello.txt", description="d", tags="x")
    assert meta["checksum"] == f"sha256:{sha256_hex(b'hello world' * 100)}"
    assert meta["storage_element_id"] == se.id
    assert (meta["uploaded_by"], meta["version"], meta["status"]) == ("alice", 1, "active")
    got = await c.get(download_url(meta))
    assert got.status_code == 200
    assert got.content == b"hello world" * 100
    assert got.headers["etag"] == f'"{sha256_hex(b"hello world" * 100)}"'
    r = await c.post("/api/v1/files", files={"file": ("m.txt", b"multipart body")})
    assert r.status_code == 201, r.text
    assert (await c.get(download_url(r.json()))).content == b"multipart body"
    assert (await c.get(f"/api/v1/files/{meta['file_id']}")).json() == meta
    # Blob and attr in the memory backend, nothing left in its temp area.
    assert len(se.backend.blobs) == 2 and se.backend.tmp == {}


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=-5", 4091, 4095), ("bytes=4000-", 4000, 4095)],
)
async def test_range(
    se: InProcessSE, sample: dict[str, Any], header: str, start: int, end: int
) -> None:
    r = await se.client.get(download_url(sample), headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.content == SAMPLE[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/4096"


async def test_range_beyond_end_is_416(se: InProcessSE, sample: dict[str, Any]) -> None:
    r = await se.client.get(download_url(sample), headers={"Range": "bytes=4096-"})
    assert_error(r, 416, "INVALID_RANGE")
    assert r.headers["content-range"] == "bytes */4096"


async def test_head_and_conditions(se: InProcessSE, sample: dict[str, Any]) -> None:
    c, url = se.client, download_url(sample)
    etag = f'"{sha256_hex(SAMPLE)}"'
    head = await c.head(url)
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "4096")
    assert (await c.get(url, headers={"If-None-Match": etag})).status_code == 304
    assert (await c.get(url, headers={"If-None-Match": '"other"'})).content == SAMPLE
    partial = await c.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (partial.status_code, partial.content) == (206, SAMPLE[:10])
    whole = await c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (whole.status_code, whole.content) == (200, SAMPLE)


async def test_patch_bumps_version_and_bad_bodies_change_nothing(
    se: InProcessSE, sample: dict[str, Any]
) -> None:
    c, fid = se.client, sample["file_id"]
    r = await c.patch(f"/api/v1/files/{fid}", json={"description": "new", "tags": ["a"]})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["description"], r.json()["tags"]) == (2, "new", ["a"])
    for body in ({}, {"tags": None}, {"size": 3}, {"metadata": {"a": 1}}, {"tags": "x"}):
        assert_error(await c.patch(f"/api/v1/files/{fid}", json=body), 400, "VALIDATION_ERROR")
    assert (await c.get(f"/api/v1/files/{fid}")).json()["version"] == 2


async def test_delete_on_edit_leaves_a_tombstone(edit_se: InProcessSE) -> None:
    c = edit_se.client
    gone = await upload(c, b"short lived", "gone.txt")
    keep = await upload(c, b"stays", "stays.txt")
    assert (await c.delete(f"/api/v1/files/{gone['file_id']}")).status_code == 204
    got = (await c.get(f"/api/v1/files/{gone['file_id']}")).json()
    assert (got["status"], got["version"]) == ("deleted", 2)
    assert_error(await c.get(download_url(gone)), 410, "FILE_GONE")
    assert_error(await c.delete(f"/api/v1/files/{gone['file_id']}"), 410, "FILE_GONE")
    listed = [i["file_id"] for i in (await c.get("/api/v1/files")).json()["items"]]
    assert gone["file_id"] not in listed and keep["file_id"] in listed
    deleted = (await c.get("/api/v1/files", params={"status": "deleted"})).json()
    assert [i["file_id"] for i in deleted["items"]] == [gone["file_id"]]


async def test_list_newest_first_with_pages(se: InProcessSE) -> None:
    c = se.client
    ids = [(await upload(c, f"list {i}".encode(), f"l{i}.txt"))["file_id"] for i in range(3)]
    first = (await c.get("/api/v1/files", params={"limit": 2})).json()
    assert [i["file_id"] for i in first["items"]] == [ids[2], ids[1]]
    assert (first["total"], first["has_more"]) == (3, True)
    second = (await c.get("/api/v1/files", params={"limit": 2, "offset": 2})).json()
    assert [i["file_id"] for i in second["items"]] == [ids[0]]
    assert second["has_more"] is False
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "gone"}):
        assert_error(await c.get("/api/v1/files", params=params), 400, "VALIDATION_ERROR")


async def test_retention_follows_the_mode(se: InProcessSE, edit_se: InProcessSE) -> None:
    perm = await upload(se.client, b"perm", "p.txt")
    assert (perm["retention_policy"], perm["ttl_days"]) == ("permanent", None)
    temp = await upload(edit_se.client, b"temp", "t.txt", ttl_days=7)
    assert (temp["retention_policy"], temp["ttl_days"]) == ("temporary", 7)
    for made, kind in ((se, "temporary"), (edit_se, "permanent")):
        r = await made.client.post(
            "/api/v1/files", content=b"x", params={"filename": "x", "retention_policy": kind}
        )
        assert_error(r, 409, "MODE_NOT_ALLOWED")
    r = await se.client.post("/api/v1/files", content=b"x", params={"filename": "x", "ttl_days": 5})
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_explicit_file_id_and_its_reuse(se: InProcessSE) -> None:
    fid = str(uuid.uuid4())
    meta = await upload(se.client, b"first", "first.txt", file_id=fid)
    assert meta["file_id"] == fid
    r = await se.client.post(
        "/api/v1/files", content=b"second", params={"filename": "x", "file_id": fid}
    )
    assert_error(r, 409, "CONFLICT")
    assert (await se.client.get(download_url(meta))).content == b"first"


async def test_checksum_header(se: InProcessSE) -> None:
    good = {"X-Checksum-SHA256": sha256_hex(b"data")}
    r = await se.client.post(
        "/api/v1/files", content=b"data", params={"filename": "a"}, headers=good
    )
    assert r.status_code == 201, r.text
    bad = {"X-Checksum-SHA256": sha256_hex(b"other")}
    r = await se.client.post(
        "/api/v1/files", content=b"data", params={"filename": "a"}, headers=bad
    )
    assert_error(r, 422, "CHECKSUM_MISMATCH")
    r = await se.client.post(
        "/api/v1/files",
        content=b"data",
        params={"filename": "a"},
        headers={"X-Checksum-SHA256": "zz"},
    )
    assert_error(r, 400, "VALIDATION_ERROR")
    assert len(se.backend.blobs) == 1 and se.backend.tmp == {}


async def test_bad_input(se: InProcessSE) -> None:
    c = se.client
    assert_error(await c.get("/api/v1/files/not-a-uuid"), 400, "VALIDATION_ERROR")
    assert_error(await c.get(f"/api/v1/files/{uuid.uuid4()}"), 404, "NOT_FOUND")
    r = await c.post("/api/v1/files", content=b"x", params={"filename": "a\x01b"})
    assert_error(r, 400, "VALIDATION_ERROR")
    r = await c.post("/api/v1/files", files={"other": ("x", b"x")})
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_file_size_limit(make_se: SEMaker) -> None:
    async with make_se("rw", max_file_size=10) as small:
        assert (
            await small.client.post("/api/v1/files", content=b"x" * 10, params={"filename": "ok"})
        ).status_code == 201
        r = await small.client.post("/api/v1/files", content=b"x" * 11, params={"filename": "no"})
        assert_error(r, 413, "FILE_TOO_LARGE")
        assert len(small.backend.blobs) == 1


async def test_tokens(se: InProcessSE, issuer: TestIssuer) -> None:
    url = "/api/v1/files"
    r = await se.client.get(url, headers={"Authorization": ""})
    assert_error(r, 401, "UNAUTHORIZED")
    r = await se.client.get(url, headers={"Authorization": "Bearer not.a.token"})
    assert_error(r, 401, "UNAUTHORIZED")
    r = await se.client.post(
        url, content=b"x", params={"filename": "x"}, headers=bearer(issuer, "files:read")
    )
    assert_error(r, 403, "FORBIDDEN")
    assert (await se.client.get(url, headers=bearer(issuer, "files:read"))).status_code == 200
    assert (await se.client.get("/api/v1/info", headers={"Authorization": ""})).status_code == 200


async def test_upload_session_resumes_at_its_offset(se: InProcessSE) -> None:
    c = se.client
    body = b"0123456789" * 10
    r = await c.post("/api/v1/uploads", json={"length": 100, "filename": "s.txt"})
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    r = await c.patch(f"/api/v1/uploads/{sid}", params={"offset": 0}, content=body[:40])
    assert r.status_code == 200, r.text
    assert r.json()["offset"] == 40
    assert (await c.get(f"/api/v1/uploads/{sid}")).json()["offset"] == 40
    # A write at the wrong offset is refused and changes nothing.
    r = await c.patch(f"/api/v1/uploads/{sid}", params={"offset": 10}, content=body[10:20])
    assert r.status_code == 409, r.text
    assert (await c.get(f"/api/v1/uploads/{sid}")).json()["offset"] == 40
    early = await c.post(f"/api/v1/uploads/{sid}/complete")
    assert early.status_code in (400, 409), early.text
    r = await c.patch(f"/api/v1/uploads/{sid}", params={"offset": 40}, content=body[40:])
    assert r.json()["offset"] == 100
    done = await c.post(f"/api/v1/uploads/{sid}/complete")
    assert done.status_code == 201, done.text
    assert done.json()["checksum"] == f"sha256:{sha256_hex(body)}"
    assert (await c.get(download_url(done.json()))).content == body


async def test_aborted_session_is_gone(se: InProcessSE) -> None:
    c = se.client
    sid = (await c.post("/api/v1/uploads", json={"length": 5})).json()["session_id"]
    assert (await c.delete(f"/api/v1/uploads/{sid}")).status_code == 204
    assert_error(await c.get(f"/api/v1/uploads/{sid}"), 404, "NOT_FOUND")
    bad = await c.post("/api/v1/uploads", json={"length": -1})
    assert_error(bad, 400, "VALIDATION_ERROR")
