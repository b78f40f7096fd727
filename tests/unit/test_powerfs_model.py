"""powerfs's durable-state model, driven through its passthrough without a mount."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.powerfs.ops import PowerOps


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_only_what_was_fsynced_survives(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"before the mount")
    ops = PowerOps(tmp_path)
    fh = ops.create("/a", 0o644)
    ops.write("/a", b"AAAA", 0, fh)
    ops.fsync("/a", 0, fh)
    ops.write("/a", b"tail", 4, fh)  # never synced
    ops.release("/a", fh)
    ops.mkdir("/d", 0o755)
    ops.fsyncdir("/", 0, 0)  # a and d durable in /
    fh = ops.create("/d/t", 0o644)
    ops.write("/d/t", b"TT", 0, fh)
    ops.fsync("/d/t", 0, fh)
    ops.release("/d/t", fh)
    ops.link("/d/final", "/d/t")
    ops.unlink("/d/t")
    ops.fsyncdir("/d", 0, 0)  # only final in d
    fh = ops.create("/lost", 0o644)  # written, never fsynced, directory never fsynced again
    ops.write("/lost", b"x", 0, fh)
    ops.release("/lost", fh)
    ops.rename("/old", "/renamed")  # the rename never made durable
    ops.model.rebuild()
    assert _files(tmp_path) == {"a": b"AAAA", "d/final": b"TT", "old": b"before the mount"}


def test_overwritten_and_removed_bytes_keep_their_durable_version(tmp_path: Path) -> None:
    (tmp_path / "j").write_bytes(b"0123456789")
    ops = PowerOps(tmp_path)
    fh = ops.open("/j", os.O_WRONLY)
    ops.write("/j", b"XX", 2, fh)  # below the durable length: the old bytes are kept
    ops.release("/j", fh)
    ops.truncate("/j", 1)
    fh = ops.create("/n", 0o644)
    ops.fsyncdir("/", 0, 0)  # n durable, empty
    ops.write("/n", b"data", 0, fh)
    ops.release("/n", fh)
    ops.unlink("/j")  # the unlink is not durable; its bytes must survive it
    ops.model.rebuild()
    assert _files(tmp_path) == {"j": b"0123456789", "n": b""}


def test_a_reused_inode_number_is_a_new_file(tmp_path: Path) -> None:
    ops = PowerOps(tmp_path)
    fh = ops.create("/a", 0o644)
    ops.write("/a", b"first", 0, fh)
    ops.fsync("/a", 0, fh)
    ops.release("/a", fh)
    ops.fsyncdir("/", 0, 0)
    ops.unlink("/a")
    fh = ops.create("/b", 0o644)  # may get a's inode number on the backing disk
    ops.write("/b", b"second", 0, fh)
    ops.fsync("/b", 0, fh)
    ops.release("/b", fh)
    ops.model.rebuild()
    assert _files(tmp_path) == {"a": b"first"}


def test_a_snapshot_is_the_durable_image_and_leaves_the_live_state_alone(tmp_path: Path) -> None:
    backing = tmp_path / "backing"
    backing.mkdir()
    ops = PowerOps(backing)
    fh = ops.create("/a", 0o644)
    ops.write("/a", b"AAAA", 0, fh)
    ops.fsync("/a", 0, fh)
    ops.fsyncdir("/", 0, 0)
    ops.write("/a", b"more", 4, fh)  # never synced
    fh2 = ops.create("/b", 0o644)  # its name never made durable
    ops.write("/b", b"b", 0, fh2)
    ops.fsync("/b", 0, fh2)
    ops.mkdir("/.powerfs-cut/one", 0o755)
    assert ops.getattr("/.powerfs-cut/one")["st_mode"] & 0o040000
    assert _files(tmp_path / "cuts" / "one") == {"a": b"AAAA"}
    assert json.loads((tmp_path / "cuts" / "one.json").read_text())["lost_entries"] == 1
    assert _files(backing) == {"a": b"AAAAmore", "b": b"b"}  # live: untouched
    ops.fsyncdir("/", 0, 0)
    ops.fsync("/a", 0, fh)
    ops.mkdir("/.powerfs-cut/two", 0o755)  # the same model goes on: now both are durable
    assert _files(tmp_path / "cuts" / "two") == {"a": b"AAAAmore", "b": b"b"}
    assert not (backing / ".powerfs-cut").exists()


def test_a_torn_snapshot_keeps_at_most_the_rest_of_the_first_unsynced_page(
    tmp_path: Path,
) -> None:
    backing = tmp_path / "backing"
    backing.mkdir()
    ops = PowerOps(backing)
    fh = ops.create("/j", 0o644)
    ops.write("/j", b"d" * 5000, 0, fh)
    ops.fsync("/j", 0, fh)
    ops.fsyncdir("/", 0, 0)
    ops.write("/j", b"u" * 9000, 5000, fh)  # unsynced: pages 1 (part), 2, 3
    lengths = set()
    for i in range(40):
        ops.mkdir(f"/.powerfs-cut/c{i}-torn", 0o755)
        data = (tmp_path / "cuts" / f"c{i}-torn" / "j").read_bytes()
        assert data[:5000] == b"d" * 5000 and set(data[5000:]) <= {ord("u")}
        lengths.add(len(data))
    assert min(lengths) == 5000 and max(lengths) <= 8192 and len(lengths) > 2
