"""Journal fail-stop (issue 11, item 8; the "fsyncgate" trap) against a running SE.

The journal lives on a tiny tmpfs that the test fills up, so a journal write really fails
(ENOSPC, often after a short write that leaves half a record). From then on the SE must
not append to that journal again and must acknowledge no write, even once room is back:
writes answer 503 JOURNAL_FAILED, readiness says ``fail`` for the journal, reads go on.
A restart recovers (the torn tail ends its segment, a fresh segment is started) and
nothing that was acknowledged is lost.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEFactory

# The journal is on local disk whatever the backend; the point is that disk failing.
pytestmark = pytest.mark.local_only

MAX_TRIES = 500  # uploads until the filled-up journal meets a page it cannot get


@pytest.fixture
def wal_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "walfs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"this test needs to mount a tmpfs (root): {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(root: Path) -> Path:
    """Take every free byte of the file system; return the file holding them."""
    filler = root / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def _upload(c: httpx.Client, n: int) -> httpx.Response:
    return c.post("/api/v1/files", content=f"file {n}".encode(), params={"filename": f"{n}.txt"})


def test_failed_journal_write_stops_writes_until_restart(
    se_factory: SEFactory, wal_fs: Path
) -> None:
    se = se_factory("rw", SE_WAL_DIR=str(wal_fs / "wal"))
    acknowledged: dict[str, bytes] = {}
    with se.client() as c:
        for n in range(3):
            r = _upload(c, n)
            assert r.status_code == 201, r.text
            acknowledged[r.json()["file_id"]] = f"file {n}".encode()
        first = next(iter(acknowledged))

        filler = _fill(wal_fs)
        refused = None
        for n in range(3, 3 + MAX_TRIES):
            r = _upload(c, n)
            if r.status_code != 201:
                refused = r
                break
            acknowledged[r.json()["file_id"]] = f"file {n}".encode()
        assert refused is not None, "the journal never met the full file system"
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "JOURNAL_FAILED"

        # Room comes back, the journal stays failed: no retried fsync, no append.
        filler.unlink()
        segments = sorted((wal_fs / "wal").glob("*.wal"))
        sizes = [p.stat().st_size for p in segments]
        again = _upload(c, 10_000)
        assert again.status_code == 503 and again.json()["error"]["code"] == "JOURNAL_FAILED"
        patched = c.patch(f"/api/v1/files/{first}", json={"description": "x"})
        assert patched.status_code == 503, patched.text
        assert patched.json()["error"]["code"] == "JOURNAL_FAILED"
        mode = c.post("/api/v1/mode/transition", json={"target_mode": "ro"})
        assert mode.status_code == 503, mode.text
        assert sorted((wal_fs / "wal").glob("*.wal")) == segments
        assert [p.stat().st_size for p in segments] == sizes

        ready = httpx.get(f"{se.url}/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["wal"]["status"] == "fail", ready.text
        status = c.get("/api/v1/maintenance/status").json()
        assert status["wal"]["failed"] is True
        assert "artstore_storage_element_wal_failed 1.0" in httpx.get(f"{se.url}/metrics").text
        for fid, data in acknowledged.items():  # reads go on
            got = c.get(f"/api/v1/files/{fid}/download")
            assert got.status_code == 200 and got.content == data

    se.restart()
    with se.client() as c:
        ready = httpx.get(f"{se.url}/health/ready").json()["checks"]
        assert ready["wal"]["status"] == "ok", ready
        for fid, data in acknowledged.items():
            got = c.get(f"/api/v1/files/{fid}/download")
            assert got.status_code == 200 and got.content == data, fid
        after = _upload(c, 20_000)
        assert after.status_code == 201, after.text
        assert c.get("/api/v1/maintenance/status").json()["wal"]["failed"] is False
    assert se.tmp_entries() == [] and se.orphan_blobs() == []
    assert os.listdir(wal_fs / "wal")  # recovery started a fresh segment there
