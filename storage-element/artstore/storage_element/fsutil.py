"""Durable file-system primitives. All of these block: call them from a worker thread."""

from __future__ import annotations

import os
from pathlib import Path


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


def write_file_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (not its directory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


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
