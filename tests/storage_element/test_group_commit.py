"""Small uploads on local disk are published in groups sharing one flush (issue 7).

Each file must still be exact and complete, on disk and in the catalog, whatever group
it rode in; uploads above ``SE_GROUP_COMMIT_MAX_BYTES`` take the streaming path.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest, sha256_hex

pytestmark = pytest.mark.local_only


def _counter(se: StorageElementUnderTest, name: str) -> float:
    text = httpx.get(f"{se.url}/metrics").text
    m = re.search(rf"^artstore_storage_element_{name}_total (\S+)$", text, re.M)
    assert m, text
    return float(m.group(1))


def test_concurrent_small_uploads_each_land_exactly(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    bodies = [os.urandom(n) for n in (0, 1, 4096, 65_536, 200_000, *range(100, 2000, 100))]

    def upload(i: int) -> tuple[int, dict[str, object]]:
        with se.client() as c:
            r = c.post("/api/v1/files", content=bodies[i], params={"filename": f"f{i}.bin"})
        assert r.status_code == 201, r.text
        return i, dict(r.json())

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = dict(pool.map(upload, range(len(bodies))))

    assert _counter(se, "group_commit_files") == len(bodies)
    assert 1 <= _counter(se, "group_commits") <= len(bodies)
    with se.client() as c:
        for i, meta in answers.items():
            assert meta["size"] == len(bodies[i])
            assert meta["checksum"] == f"sha256:{sha256_hex(bodies[i])}"
            got = c.get(f"/api/v1/files/{meta['file_id']}/download")
            assert got.status_code == 200 and got.content == bodies[i]
        listed = c.get("/api/v1/files", params={"limit": 100}).json()
    assert listed["total"] == len(bodies)  # the catalog has every row
    assert {m["file_id"] for m in listed["items"]} == {m["file_id"] for m in answers.values()}
    assert se.tmp_entries() == [] and se.orphan_blobs() == []
    assert len(se.attrs()) == len(bodies)


def test_uploads_above_the_limit_stream(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_GROUP_COMMIT_MAX_BYTES="1000")
    small, large = os.urandom(1000), os.urandom(1001)
    with se.client() as c:
        ids = []
        for body in (small, large):
            r = c.post("/api/v1/files", content=body, params={"filename": "x.bin"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["file_id"])
        assert _counter(se, "group_commit_files") == 1  # only the small one
        for fid, body in zip(ids, (small, large), strict=True):
            assert c.get(f"/api/v1/files/{fid}/download").content == body


def test_grouped_upload_with_a_wrong_checksum_leaves_nothing(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    with se.client() as c:
        r = c.post(
            "/api/v1/files",
            content=b"hello",
            params={"filename": "h.txt"},
            headers={"X-Checksum-SHA256": "0" * 64},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "CHECKSUM_MISMATCH"
        assert c.get("/api/v1/files").json()["total"] == 0
    assert se.attrs() == [] and se.blobs() == [] and se.tmp_entries() == []
    assert _counter(se, "group_commit_files") == 0
