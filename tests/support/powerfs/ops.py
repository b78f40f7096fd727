"""The passthrough: every operation goes to the backing directory, and every one that
changes what a power cut would leave tells the model (``model.DurableModel``).

Path-based (libfuse's high-level API through mfusepy). The daemon runs single-threaded,
so the model needs no lock. The backing files are never fsynced themselves: what is
durable is the model's to say, not the backing disk's.

The control channel: ``mkdir /.powerfs-cut/<name>`` (``<name>-torn`` for torn tail
pages) writes the durable image to ``<cuts>/<name>`` and its stats beside it as
``<name>.json``, between two operations (the daemon is single-threaded, so the model is
consistent there), without touching the live state: a power cut that the running
process never notices. The reserved names never reach the backing directory.
"""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path
from typing import Any

from mfusepy import FuseOSError, Operations

from tests.support.powerfs.model import DurableModel

CUT = "/.powerfs-cut"

_STAT_KEYS = (
    "st_mode",
    "st_ino",
    "st_nlink",
    "st_uid",
    "st_gid",
    "st_size",
    "st_atime",
    "st_mtime",
    "st_ctime",
)


class PowerOps(Operations):  # type: ignore[misc]
    use_ns = True  # utimens gets nanoseconds

    def __init__(self, backing: Path, cuts: Path | None = None) -> None:
        self.backing = backing
        self.cuts = cuts if cuts is not None else backing.with_name("cuts")
        self.cut_names: set[str] = set()
        self.model = DurableModel.scan(backing)

    def _p(self, path: str) -> Path:
        return self.backing / path.lstrip("/")

    # -- reading ---------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path == CUT or path.startswith(CUT + "/"):
            if path != CUT and path[len(CUT) + 1 :] not in self.cut_names:
                raise FuseOSError(errno.ENOENT)
            path = "/"  # shown as a directory like the root
        st = os.fstat(fh) if fh is not None else os.lstat(self._p(path))
        return {k: getattr(st, k) for k in _STAT_KEYS}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._p(path))]

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._p(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree")
        return {k: getattr(sv, k) for k in (*keys, "f_files", "f_flag", "f_frsize", "f_namemax")}

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._p(path), amode):
            raise FuseOSError(errno.EACCES)
        return 0

    # -- files -----------------------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        p = self._p(path)
        if flags & os.O_TRUNC:
            self.model.before_truncate(p, 0)
        return os.open(p, flags)

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        p = self._p(path)
        fd = os.open(p, flags | os.O_CREAT, mode)
        self.model.created(p)
        return fd

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self.model.before_write(fh, offset)
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        p = self._p(path)
        self.model.before_truncate(p, length)
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(p, length)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self.model.fsync_file(fh)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._p(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._p(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self._p(path), ns=times)
        return 0

    # -- directory entries -------------------------------------------------------------
    def mkdir(self, path: str, mode: int) -> int:
        if path.startswith(CUT + "/"):
            return self._snapshot(path[len(CUT) + 1 :])
        p = self._p(path)
        os.mkdir(p, mode)
        self.model.created(p)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._p(path))
        return 0

    def unlink(self, path: str) -> int:
        p = self._p(path)
        self.model.before_unlink(p)
        os.unlink(p)
        return 0

    def link(self, target: str, source: str) -> int:
        os.link(self._p(source), self._p(target))
        return 0

    def rename(self, old: str, new: str) -> int:
        dst = self._p(new)
        if os.path.lexists(dst):
            self.model.before_unlink(dst)
        os.rename(self._p(old), dst)
        return 0

    def opendir(self, path: str) -> int:
        return 0

    def releasedir(self, path: str, fh: int) -> int:
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self.model.fsync_dir(self._p(path))
        return 0

    def _snapshot(self, name: str) -> int:
        if "/" in name or name in self.cut_names:
            raise FuseOSError(errno.EINVAL)
        tear = random.Random(name) if name.endswith("-torn") else None
        lost = self.model.image(self.cuts / name, tear)
        stats = {**self.model.stats.as_dict(), "lost_entries": lost}
        (self.cuts / f"{name}.json").write_text(json.dumps(stats))
        self.cut_names.add(name)
        return 0
