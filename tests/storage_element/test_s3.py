"""What only the S3 backend has: multipart uploads (files larger than one part) and the
uncompleted multipart upload a crash leaves behind."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import httpx
import pytest

from artstore.storage_element.faults import CRASH_EXIT_CODE
from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest

pytestmark = pytest.mark.s3_only

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part S3 allows
BIG = 12 * MiB + 12_345  # three parts, the last one short
DATA = random.Random(3).randbytes(BIG)


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _s3_se(se_factory: SEFactory, **env: str) -> StorageElementUnderTest:
    return se_factory("rw", SE_S3_PART_SIZE=str(PART), **env)


def _etag(se: StorageElementUnderTest, file_id: str) -> str:
    """The S3 ETag of a file's blob: ``"<md5>-<parts>"`` for a multipart object."""
    [blob] = [b for b in se.blobs() if file_id.replace("-", "")[:8] in b.name]
    return str(se._s3.head_object(Bucket=blob.bucket, Key=blob.key)["ETag"])


@pytest.mark.parametrize(
    ("size", "parts"), [(PART - 1, 0), (PART, 1), (BIG, 3)], ids=["under", "one_part", "three"]
)
@pytest.mark.parametrize("how", ["raw", "multipart"])
def test_large_file_round_trip(se_factory: SEFactory, how: str, size: int, parts: int) -> None:
    se = _s3_se(se_factory)
    data = DATA[:size]
    with se.client() as c:
        if how == "raw":  # streamed without Content-Length
            r = c.post("/api/v1/files", content=_chunks(data), params={"filename": "big.bin"})
        else:
            r = c.post("/api/v1/files", files={"file": ("big.bin", data)})
        assert r.status_code == 201, r.text
        meta = r.json()
        assert meta["size"] == size
        assert meta["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        url = f"/api/v1/files/{meta['file_id']}/download"
        got = c.get(url)
        assert got.status_code == 200 and got.content == data
        for start, end in ((PART - 10, PART + 9), (2 * PART - 1, 2 * PART), (size - 7, size - 1)):
            if end >= size:
                continue
            r = c.get(url, headers={"Range": f"bytes={start}-{end}"})
            assert r.status_code == 206, r.text
            assert r.headers["content-range"] == f"bytes {start}-{end}/{size}"
            assert r.content == data[start : end + 1]
    etag = _etag(se, meta["file_id"])
    assert etag.endswith(f'-{parts}"') if parts else "-" not in etag, etag
    assert se.tmp_entries() == [] and se.orphan_blobs() == []


@pytest.mark.parametrize(
    "step", ["upload.after_tmp_blob", "upload.after_tmp_attr", "upload.after_blob_rename"]
)
def test_crash_mid_multipart_leaves_no_upload(se_factory: SEFactory, step: str) -> None:
    se = _s3_se(se_factory, SE_CRASH_AT=step)
    with se.client() as c, pytest.raises(httpx.TransportError):
        c.post("/api/v1/files", content=_chunks(DATA), params={"filename": "big.bin"})
    assert se.process.wait_exit() == CRASH_EXIT_CODE, se.process.log()
    if step == "upload.after_blob_rename":
        assert len(se.blobs()) == 1 and se.multipart_uploads() == []  # completed, no attr
    else:
        assert len(se.multipart_uploads()) == 1 and se.blobs() == []  # parts sent, not done
    se.start(SE_CRASH_AT="")
    assert se.multipart_uploads() == []
    assert se.tmp_entries() == []
    assert se.blobs() == [] and se.attrs() == []
    with se.client() as c:  # and the SE works as before
        r = c.post("/api/v1/files", content=DATA, params={"filename": "again.bin"})
        assert r.status_code == 201, r.text
        assert c.get(f"/api/v1/files/{r.json()['file_id']}/download").content == DATA
