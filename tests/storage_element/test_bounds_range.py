"""Issue 13 findings 3 and 4 at a running SE: a Range of thousands of digits is 416 (or
the whole file), never a 500; a JSON body over SE_MAX_BODY_BYTES is 413 while uploads
(streamed, bounded by SE_MAX_FILE_SIZE) are not held to it."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from tests.support.se import StorageElementUnderTest

BIG = "9" * 5000
DATA = bytes(range(256)) * 16  # 4 KiB


def _upload(c: httpx.Client, data: bytes) -> dict[str, Any]:
    r = c.post(
        "/api/v1/files",
        content=data,
        params={"filename": "r.bin"},
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_range_of_thousands_of_digits(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        meta = _upload(c, DATA)
        url = f"/api/v1/files/{meta['file_id']}/download"
        for rng in (f"bytes={BIG}-", f"bytes={BIG}-{BIG}", f"bytes={'0' * 30}{BIG}-"):
            r = c.get(url, headers={"Range": rng})
            assert r.status_code == 416, (rng[:40], r.text[:300])
            assert r.json()["error"]["code"] == "INVALID_RANGE"
            assert r.headers["content-range"] == f"bytes */{len(DATA)}"
        # A huge end or suffix means "to the end": the whole file, as a 206.
        for rng in (f"bytes=0-{BIG}", f"bytes=-{BIG}"):
            r = c.get(url, headers={"Range": rng})
            assert r.status_code == 206, (rng[:40], r.text[:300])
            assert r.content == DATA
        r = c.get(url, headers={"Range": f"bytes=10-{'0' * 5000}9"})
        assert r.status_code == 200  # end before start: the Range is ignored


def test_json_body_limit_spares_uploads(se_factory: Any) -> None:
    se = se_factory("rw", SE_MAX_BODY_BYTES="2048")
    with se.client() as c:
        data = b"x" * (64 * 1024)  # far over the JSON limit: an upload is streamed
        meta = _upload(c, data)
        assert meta["checksum"].endswith(hashlib.sha256(data).hexdigest())
        r = c.patch(f"/api/v1/files/{meta['file_id']}", json={"description": "d" * 4000})
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "BODY_TOO_LARGE"
        r = c.patch(f"/api/v1/files/{meta['file_id']}", json={"description": "small"})
        assert r.status_code == 200, r.text
