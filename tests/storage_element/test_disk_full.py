"""A really full disk: the SE's data directory on a small tmpfs whose inodes run out.

Inodes (not bytes) are exhausted so that the SE's own free-space check still says
"room" and the write itself meets ENOSPC: the path a real full disk takes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WRITE_PATH_ENV, SEFactory

# The point is the local filesystem running out; a bucket has no such disk.
pytestmark = pytest.mark.local_only


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,nr_inodes=400", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill_inodes(root: Path, leave: int) -> list[Path]:
    filler = root / "filler"
    filler.mkdir()
    made = []
    while os.statvfs(root).f_favail > leave:
        p = filler / str(len(made))
        p.touch()
        made.append(p)
    return made


def test_disk_full_mid_upload_answers_507_and_leaves_nothing(
    se_factory: SEFactory, small_fs: Path, write_path: str
) -> None:
    se = se_factory(
        "rw",
        SE_DATA_DIR=str(small_fs / "se"),
        SE_WAL_DIR=str(small_fs / "wal"),
        **WRITE_PATH_ENV[write_path],
    )
    se.data_dir = small_fs / "se"
    with se.client() as c:
        ok = c.post("/api/v1/files", content=b"a" * 1000, params={"filename": "a.txt"})
        assert ok.status_code == 201
        fillers = _fill_inodes(small_fs, leave=1)  # the temp blob fits, nothing after it
        full = c.post("/api/v1/files", content=b"b" * 200_000, params={"filename": "b.txt"})
        assert full.status_code == 507, full.text
        assert full.json()["error"]["code"] == "STORAGE_FULL"
        assert se.tmp_entries() == [] and se.orphan_blobs() == []
        assert len(se.attrs()) == 1
        # The acknowledged file is untouched, and room coming back means writes work again.
        assert c.get(f"/api/v1/files/{ok.json()['file_id']}/download").content == b"a" * 1000
        for p in fillers:
            p.unlink()
        again = c.post("/api/v1/files", content=b"c" * 1000, params={"filename": "c.txt"})
        assert again.status_code == 201, again.text
