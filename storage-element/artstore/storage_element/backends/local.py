"""Local-disk backend: blobs and attrs under ``files/YYYY/MM/DD/HH`` (DESIGN §5.1, §5.3).

Every method blocks; the services call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from artstore.storage_element.fsutil import (
    fsync_dir,
    makedirs_durable,
    remove_if_exists,
    write_file_durable,
)
from artstore.storage_element.layout import ATTR_SUFFIX, Layout

FaultPoint = Callable[[str], None]


class TempBlob:
    """A blob being received into ``tmp/``: hashed as written, fsynced before publishing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._hash = hashlib.sha256()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(data)

    def finish(self) -> str:
        """fsync and close; returns the hex SHA-256 of what was written."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return self._hash.hexdigest()

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        remove_if_exists(self.path)


class LocalBackend:
    name = "local"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def prepare(self) -> None:
        for d in (self.layout.files_dir, self.layout.tmp_dir, self.layout.quarantine_dir):
            makedirs_durable(d)

    def sweep_tmp(self) -> int:
        """Remove everything in ``tmp/``: after recovery nothing there is wanted."""
        removed = 0
        for entry in os.scandir(self.layout.tmp_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        if removed:
            fsync_dir(self.layout.tmp_dir)
        return removed

    # -- writing --------------------------------------------------------------------
    def new_temp(self, name: str) -> TempBlob:
        return TempBlob(self.layout.tmp_dir / name)

    def write_temp(self, name: str, data: bytes) -> Path:
        path = self.layout.tmp_dir / name
        write_file_durable(path, data)
        return path

    def publish(self, tmp_blob: Path, tmp_attr: Path, storage_path: str, fault: FaultPoint) -> None:
        """Move a received blob and its attr to their final names; the attr is the commit."""
        blob = self.layout.blob_path(storage_path)
        makedirs_durable(blob.parent)
        os.rename(tmp_blob, blob)
        fault("upload.after_blob_rename")
        os.rename(tmp_attr, self.layout.attr_path(storage_path))
        fault("upload.after_attr_rename")
        fsync_dir(blob.parent)
        fault("upload.after_dir_fsync")

    def replace_attr(self, tmp_attr: Path, storage_path: str, fault: FaultPoint, step: str) -> None:
        final = self.layout.attr_path(storage_path)
        os.replace(tmp_attr, final)
        fault(step)
        fsync_dir(final.parent)

    def remove_blob(self, storage_path: str) -> None:
        path = self.layout.blob_path(storage_path)
        if remove_if_exists(path):
            fsync_dir(path.parent)

    # -- reading --------------------------------------------------------------------
    def read_attr(self, storage_path: str) -> bytes:
        return self.layout.attr_path(storage_path).read_bytes()

    def attr_exists(self, storage_path: str) -> bool:
        return self.layout.attr_path(storage_path).exists()

    def open_blob(self, storage_path: str) -> int:
        return os.open(self.layout.blob_path(storage_path), os.O_RDONLY)

    def quarantine(self, storage_path: str) -> Path:
        """Move the attr and blob of ``storage_path`` aside, keeping both."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        dest = self.layout.quarantine_dir / f"{storage_path}.{stamp}"
        makedirs_durable(dest.parent)
        for src, suffix in (
            (self.layout.attr_path(storage_path), ATTR_SUFFIX),
            (self.layout.blob_path(storage_path), ""),
        ):
            if src.exists():
                os.rename(src, Path(f"{dest}{suffix}"))
                fsync_dir(src.parent)
        fsync_dir(dest.parent)
        return dest

    def walk(self) -> Iterator[tuple[str, int]]:
        """(relative path, size) of every file under ``files/``."""
        root = str(self.layout.files_dir)
        stack = [root]
        while stack:
            current = stack.pop()
            with os.scandir(current) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
                        yield rel, entry.stat(follow_symlinks=False).st_size

    def fs_usage(self) -> tuple[int, int]:
        """(total, free) bytes of the filesystem holding the data directory."""
        st = os.statvfs(self.layout.data_dir)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
