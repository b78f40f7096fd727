"""Single and batch uploads through the ingester onto real storage elements."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ingester.conftest import client, se_bytes, se_meta
from tests.support.admin import claims_of
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System


@dataclass
class Setup:
    edit: StorageElementUnderTest
    rw1: StorageElementUnderTest
    rw2: StorageElementUnderTest
    ingester: ServiceProcess


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    edit = system.add_se("edit")
    rw1, rw2 = system.add_se("rw"), system.add_se("rw")
    yield Setup(edit, rw1, rw2, system.start_ingester(IG_REPLICAS="2"))


def test_multipart_upload_is_stored_byte_exact(setup: Setup, user_token: str) -> None:
    data = os.urandom(300_000)
    with client(setup.ingester, user_token) as c:
        r = c.post(
            "/api/v1/files/upload",
            data={"description": "a report", "tags": ["q1", "draft"], "metadata": '{"k": "v"}'},
            files={"file": ("report.pdf", data, "application/pdf")},
        )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/files/{body['file_id']}"
    assert body["retention_policy"] == "temporary" and body["ttl_days"] == 30
    assert body["original_filename"] == "report.pdf" and body["content_type"] == "application/pdf"
    assert body["tags"] == ["q1", "draft"] and body["metadata"] == {"k": "v"}
    assert body["size"] == len(data)
    assert body["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    # The SE recorded the end user, not the ingester's account: the token went through.
    assert body["uploaded_by"] == claims_of(user_token)["sub"]
    assert body["storage_element_id"] == setup.edit.id
    assert body["copies"] == [{"storage_element_id": setup.edit.id, "status": "active"}]
    assert se_bytes(setup.edit, body["file_id"]) == data


def test_raw_upload_with_fields_in_the_query(setup: Setup, user_token: str) -> None:
    data = os.urandom(70_000)
    with client(setup.ingester, user_token) as c:
        r = c.put(
            "/api/v1/files/upload",
            params={"filename": "raw.bin", "tags": ["a", "b"], "ttl_days": "3"},
            content=data,
            headers={"Content-Type": "application/x-thing", "X-Request-ID": "trace-raw-123"},
        )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["x-request-id"] == "trace-raw-123"
    assert body["ttl_days"] == 3 and body["tags"] == ["a", "b"]
    assert body["content_type"] == "application/x-thing"
    assert se_bytes(setup.edit, body["file_id"]) == data
    # The request id reached the SE's own log line for the write.
    assert "trace-raw-123" in setup.edit.process.log_path.read_text()


def test_raw_upload_needs_a_filename(setup: Setup, user_token: str) -> None:
    with client(setup.ingester, user_token) as c:
        r = c.put("/api/v1/files/upload", content=b"x")
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_permanent_file_lands_on_both_rw_ses_under_one_id(setup: Setup, user_token: str) -> None:
    data = os.urandom(1_500_000)
    with client(setup.ingester, user_token) as c:
        r = c.post(
            "/api/v1/files/upload",
            data={"retention_policy": "permanent"},
            files={"file": ("keep.bin", data)},
        )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["retention_policy"] == "permanent" and body["ttl_days"] is None
    assert sorted(c["storage_element_id"] for c in body["copies"]) == sorted(
        [setup.rw1.id, setup.rw2.id]
    )
    for se in (setup.rw1, setup.rw2):
        assert se_bytes(se, body["file_id"]) == data
    assert se_meta(setup.edit, body["file_id"]) is None


def test_ttl_days_with_permanent_is_400(setup: Setup, user_token: str) -> None:
    before = [len(se.attrs()) for se in (setup.rw1, setup.rw2)]
    with client(setup.ingester, user_token) as c:
        r = c.post(
            "/api/v1/files/upload",
            data={"retention_policy": "permanent", "ttl_days": "5"},
            files={"file": ("x.txt", b"x")},
        )
        raw = c.put(
            "/api/v1/files/upload",
            params={"filename": "x", "retention_policy": "permanent", "ttl_days": "5"},
            content=b"x",
        )
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR", r.text
    assert raw.status_code == 400, raw.text
    assert [len(se.attrs()) for se in (setup.rw1, setup.rw2)] == before


def test_checksum_mismatch_is_422_and_nothing_is_kept(setup: Setup, user_token: str) -> None:
    data = os.urandom(200_000)
    before = len(setup.edit.attrs()), len(setup.rw1.attrs()), len(setup.rw2.attrs())
    with client(setup.ingester, user_token) as c:
        bad = c.put(
            "/api/v1/files/upload",
            params={"filename": "c.bin"},
            content=data,
            headers={"X-Checksum-SHA256": "0" * 64},
        )
        bad_perm = c.post(
            "/api/v1/files/upload",
            data={"retention_policy": "permanent"},
            files={"file": ("c.bin", data)},
            headers={"X-Checksum-SHA256": "1" * 64},
        )
        good = c.put(
            "/api/v1/files/upload",
            params={"filename": "c.bin"},
            content=data,
            headers={"X-Checksum-SHA256": hashlib.sha256(data).hexdigest()},
        )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "CHECKSUM_MISMATCH"
    assert bad_perm.status_code == 422, bad_perm.text
    assert good.status_code == 201, good.text
    after = len(setup.edit.attrs()), len(setup.rw1.attrs()), len(setup.rw2.attrs())
    assert after == (before[0] + 1, before[1], before[2])
    for se in (setup.edit, setup.rw1, setup.rw2):
        assert se.tmp_entries() == [] and se.orphan_blobs() == []


def test_bad_token_401_and_missing_scope_403(setup: Setup, system: System, user_token: str) -> None:
    with client(setup.ingester, None) as c:
        none = c.put("/api/v1/files/upload", params={"filename": "a"}, content=b"a")
    with client(setup.ingester, user_token[:-4] + "AAAA") as c:
        forged = c.put("/api/v1/files/upload", params={"filename": "a"}, content=b"a")
    with client(setup.ingester, system.user_token(["auditor"])) as c:
        reader = c.put("/api/v1/files/upload", params={"filename": "a"}, content=b"a")
        batch = c.post("/api/v1/files/batch", files={"file": ("a", b"a")})
    for r in (none, forged):
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Bearer")
    for r in (reader, batch):
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", r.text


def test_over_the_size_limit_is_413(setup: Setup, system: System, user_token: str) -> None:
    small = system.start_ingester(IG_MAX_FILE_SIZE="100000")
    before = len(setup.edit.attrs())
    data = os.urandom(150_000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: found out while streaming
        for i in range(0, len(data), 16_384):
            yield data[i : i + 16_384]

    with client(small, user_token) as c:
        announced = c.put("/api/v1/files/upload", params={"filename": "big"}, content=data)
        streamed = c.put("/api/v1/files/upload", params={"filename": "big"}, content=chunks())
        form = c.post("/api/v1/files/upload", files={"file": ("big", data)})
        ok = c.put("/api/v1/files/upload", params={"filename": "ok"}, content=data[:100_000])
    for r in (announced, streamed, form):
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "FILE_TOO_LARGE"
    assert ok.status_code == 201, ok.text
    assert len(setup.edit.attrs()) == before + 1
    assert setup.edit.tmp_entries() == [] and setup.edit.orphan_blobs() == []
    small.stop()


def test_fields_after_the_file_part_are_refused(setup: Setup, user_token: str) -> None:
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nlate\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    before = len(setup.edit.attrs())
    with client(setup.ingester, user_token) as c:
        r = c.post(
            "/api/v1/files/upload",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert r.status_code == 400, r.text
    assert len(setup.edit.attrs()) == before


def test_batch_stores_the_good_parts(setup: Setup, user_token: str) -> None:
    files = {f"f{i}.bin": os.urandom(10_000 + i) for i in range(3)}
    parts = [("file", (name, data)) for name, data in files.items()]
    parts.insert(1, ("other", ("bad.bin", b"misnamed part")))
    with client(setup.ingester, user_token) as c:
        r = c.post(
            "/api/v1/files/batch",
            data={"tags": "batch", "metadata": json.dumps({"lot": "7"})},
            files=parts,
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == 3 and body["failed"] == 1
    names = [i["filename"] for i in body["items"]]
    assert names == ["f0.bin", "bad.bin", "f1.bin", "f2.bin"]
    bad = body["items"][1]
    assert bad["status"] == "failed" and bad["error"]["code"] == "VALIDATION_ERROR"
    for item in body["items"]:
        if item["status"] == "stored":
            f = item["file"]
            assert f["tags"] == ["batch"] and f["metadata"] == {"lot": "7"}
            assert se_bytes(setup.edit, f["file_id"]) == files[item["filename"]]


def test_batch_part_failing_on_the_se_does_not_stop_the_others(
    setup: Setup, user_token: str
) -> None:
    # A permanent batch with a too long tag before its second part: that part alone fails
    # (the ingester refuses the tag for the parts after it; nothing of it reaches an SE).
    parts = [
        ("retention_policy", (None, "permanent")),
        ("file", ("one.bin", b"1" * 5000)),
        ("tags", (None, "x" * 500)),  # too long a tag: applies to the parts after it
        ("file", ("two.bin", b"2" * 5000)),
    ]
    with client(setup.ingester, user_token) as c:
        r = c.post("/api/v1/files/batch", files=parts)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["status"] for i in body["items"]] == ["stored", "failed"]
    assert body["items"][1]["error"]["code"] == "VALIDATION_ERROR"
    stored = body["items"][0]["file"]
    assert len(stored["copies"]) == 2
    assert se_bytes(setup.rw2, stored["file_id"]) == b"1" * 5000


def test_batch_limits(setup: Setup, system: System, user_token: str) -> None:
    limited = system.start_ingester(IG_BATCH_MAX_FILES="2", IG_BATCH_MAX_BYTES="50000")
    with client(limited, user_token) as c:
        many = c.post(
            "/api/v1/files/batch",
            files=[("file", (f"n{i}", b"x" * 10)) for i in range(3)],
        )
        too_big = c.post("/api/v1/files/batch", files={"file": ("big", os.urandom(60_000))})
    assert many.status_code == 200, many.text
    assert [i["status"] for i in many.json()["items"]] == ["stored", "stored", "failed"]
    assert many.json()["items"][2]["error"]["code"] == "VALIDATION_ERROR"
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "FILE_TOO_LARGE"
    limited.stop()
