"""Durable file-system primitives. All of these block: call them from a worker thread."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, cast


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path) -> None:
    """Create ``path`` and its missing parents, fsyncing each new entry's parent."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue  # a concurrent writer made it; it fsyncs its parent too
        fsync_dir(d.parent)


def write_file(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to a new file (replacing one of that name); fsync it if ``durable``
    (not its directory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_file_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (not its directory)."""
    write_file(path, data, durable=True)


def atomic_replace(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Durably replace ``path`` with ``data``: temp file, fsync, rename, directory fsync."""
    tmp = tmp_dir / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    write_file_durable(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_if_exists(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(2)`` (Linux), which Python's ``os`` does not offer."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


_SYNCFS = _load_syncfs()

# statfs(2) f_type of a FUSE filesystem (linux/magic.h).
FUSE_SUPER_MAGIC = 0x65735546
FlushMode = Literal["auto", "syncfs", "fsync"]


def _load_statfs() -> Callable[[bytes, ctypes.Array[ctypes.c_char]], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).statfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = ctypes.c_int
    return cast(Callable[[bytes, ctypes.Array[ctypes.c_char]], int], fn)


_STATFS = _load_statfs()


def filesystem_type(path: Path) -> int | None:
    """``statfs(path).f_type`` (Linux; its first field, a C long), None when unknown."""
    if _STATFS is None:
        return None
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if _STATFS(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value


def syncfs_reaches_disk(path: Path) -> bool:
    """Whether ``syncfs`` on ``path``'s filesystem makes its files durable.

    Not on FUSE: the kernel sends FUSE_SYNCFS only to virtiofs, so a FUSE server
    (sshfs, s3fs, a test filesystem) never hears of it and ``syncfs`` returns 0 with
    nothing flushed on the server's side. fsync and fsyncdir do reach it."""
    return _SYNCFS is not None and filesystem_type(path) != FUSE_SUPER_MAGIC


class FileSystemFlush:
    """Makes a group of just-written files durable with one flush of their filesystem.

    ``syncfs`` writes back every dirty page and inode of the filesystem and commits its
    journal once, so N small files cost one flush instead of N fsyncs (which on ext4 each
    wait for a journal commit). ``mode`` ``fsync`` fsyncs each file instead, as does
    ``auto`` where ``syncfs`` would not reach the disk (not Linux; a FUSE filesystem).
    ``path`` must be on the filesystem of the files (the SE's data directory).
    """

    def __init__(self, path: Path, mode: FlushMode = "auto") -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        if mode == "auto":
            self.uses_syncfs = syncfs_reaches_disk(path)
        else:
            self.uses_syncfs = mode == "syncfs" and _SYNCFS is not None

    def flush(self, files: Sequence[Path]) -> None:
        if self.uses_syncfs and _SYNCFS is not None:
            if _SYNCFS(self._fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs failed: {os.strerror(err)}")
            return
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
