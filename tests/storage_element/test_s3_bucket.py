"""Two storage elements and one bucket (issue 11, item 10), on a real S3 server.

Without a prefix an SE claims the whole bucket with a marker object; a second SE on that
bucket refuses to start (clear log line, non-zero exit) instead of counting and aborting
the first one's objects. With distinct prefixes both run, and neither counts nor aborts
what is under the other's prefix. Readiness asks the bucket, not a local folder.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import S3_CAPACITY, SEBackend, StorageElementUnderTest
from tests.support.seaweed import SeaweedServer

pytestmark = pytest.mark.s3_only

MARKER = ".artstore-se.json"


def _bucket() -> str:
    return f"shared-{uuid.uuid4().hex[:10]}"


def _on(se_factory: SEFactory, bucket: str, prefix: str, start: bool = True) -> Any:
    se = se_factory("rw", start=start, SE_S3_BUCKET=bucket, SE_S3_PREFIX=prefix)
    se.s3_prefix = prefix  # what the test helpers list under
    return se


def _refused(se: StorageElementUnderTest) -> str:
    """Start ``se`` expecting it to refuse; return its log."""
    se.process.start(wait=False)
    code = se.process.wait_exit(60)
    assert code != 0, se.process.log()
    log = se.process.log()
    assert "refusing to start" in log, log
    return log


def _upload(se: StorageElementUnderTest, data: bytes) -> str:
    with se.client() as c:
        r = c.post("/api/v1/files", content=data, params={"filename": "f.bin"})
    assert r.status_code == 201, r.text
    return str(r.json()["file_id"])


def _file_count(se: StorageElementUnderTest) -> int:
    with se.client() as c:
        return int(c.get("/api/v1/info").json()["capacity"]["file_count"])


def test_second_se_without_prefix_refuses_a_claimed_bucket(se_factory: SEFactory) -> None:
    bucket = _bucket()
    first = _on(se_factory, bucket, "")
    fid = _upload(first, b"first's")
    marker = json.loads(first._s3.get_object(Bucket=bucket, Key=MARKER)["Body"].read())
    assert marker["storage_id"] == first.id

    second = _on(se_factory, bucket, "", start=False)
    log = _refused(second)
    assert first.id in log and "SE_S3_PREFIX" in log
    # Nor may an SE with a prefix live inside a bucket another SE claimed whole.
    nested = _on(se_factory, bucket, "inside/", start=False)
    assert first.id in _refused(nested)

    # The first is untouched and still its own bucket's owner after a restart.
    first.restart()
    with first.client() as c:
        assert c.get(f"/api/v1/files/{fid}/download").content == b"first's"
    assert _file_count(first) == 1


def test_se_without_prefix_refuses_a_bucket_already_shared(se_factory: SEFactory) -> None:
    bucket = _bucket()
    prefixed = _on(se_factory, bucket, "se-a/")
    _upload(prefixed, b"a")
    log = _refused(_on(se_factory, bucket, "", start=False))
    assert "se-a/" in log  # named as what makes the bucket shared


def test_distinct_prefixes_share_a_bucket_without_touching_each_other(
    se_factory: SEFactory,
) -> None:
    bucket = _bucket()
    a = _on(se_factory, bucket, "a/")
    b = _on(se_factory, bucket, "b/")
    for n in range(2):
        _upload(a, b"a%d" % n)
    _upload(b, b"b0")
    # An upload in flight on b (as a crash of b would leave it), and one left by a crash
    # of a: restarting a (its recovery aborts its own leftovers) must spare b's.
    s3 = a._s3
    theirs = s3.create_multipart_upload(Bucket=bucket, Key="b/2026/01/01/00/inflight.bin")
    ours = s3.create_multipart_upload(Bucket=bucket, Key="a/2026/01/01/00/leftover.bin")
    a.restart()
    b_uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="b/").get("Uploads", [])
    assert [u["UploadId"] for u in b_uploads] == [theirs["UploadId"]]
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix="a/").get("Uploads", []) == []
    del ours

    assert _file_count(a) == 2 and _file_count(b) == 1
    with a.client() as c:
        assert c.get("/api/v1/files").json()["total"] == 2
    with b.client() as c:
        assert c.get("/api/v1/files").json()["total"] == 1
    # A prefix inside another SE's prefix would be listed by it: refused.
    assert a.id in _refused(_on(se_factory, bucket, "a/inner/", start=False))


def test_readiness_asks_the_bucket(
    tmp_path: Any, issuer: TestIssuer, database: TestDatabase
) -> None:
    server = SeaweedServer().start()
    se = StorageElementUnderTest(
        tmp_path / "se",
        issuer,
        database.url,
        "rw",
        {"SE_MAX_CAPACITY": str(S3_CAPACITY)},
        backend=SEBackend("s3", server),
    )
    try:
        se.start()
        ready = httpx.get(f"{se.url}/health/ready", timeout=10)
        assert ready.json()["checks"]["backend"]["status"] == "ok", ready.text
        server.stop()
        down = httpx.get(f"{se.url}/health/ready", timeout=10)
        assert down.status_code == 503
        backend = down.json()["checks"]["backend"]
        assert backend["status"] == "fail" and "bucket" in backend["message"], backend
    finally:
        se.process.stop()
        server.stop()
