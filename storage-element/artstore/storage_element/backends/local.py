"""Local-disk backend: blobs and attrs under ``files/YYYY/MM/DD/HH`` (architecture §5.1, §5.3).

Durability: a blob is written to ``tmp/`` and fsynced, its attr likewise; both are
moved into the hour folder (blob first, the attr's move is the commit point) and the
folder is fsynced, as is every folder created on the way.

Publishing never overwrites: a move is ``link(tmp, final)`` then ``unlink(tmp)``, and
``link`` fails with EEXIST when the name is taken (``rename`` would silently replace
it). A publish that meets a taken name raises FileExistsError and leaves nothing of
its own at the final names.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from artstore.storage_element.backends.base import BlobWriter, FaultPoint, Folder, SmallWrite
from artstore.storage_element.backends.quarantine_entries import (
    INFO_SUFFIX,
    QuarantinedEntry,
    group,
    new_entry,
)
from artstore.storage_element.fsutil import (
    FileSystemFlush,
    FlushMode,
    fsync_dir,
    makedirs_durable,
    remove_if_exists,
    write_file,
    write_file_durable,
)
from artstore.storage_element.layout import ATTR_SUFFIX, Layout, safe_relative


def move_noreplace(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` unless ``dst`` exists (FileExistsError then)."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links on this file system: check, then rename (the per-file lock
        # and the id claim keep two writers of one name apart within this SE).
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from exc
        os.rename(src, dst)
        return
    os.unlink(src)


class LocalBlobWriter:
    """A blob being received into ``tmp/<txn>.blob``."""

    def __init__(self, path: Path, txn: str) -> None:
        self.path = path
        self.txn = txn
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
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return self._hash.hexdigest()

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        remove_if_exists(self.path)


class LocalBlobReader:
    def __init__(self, path: Path, start: int, length: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._pos = start
        self._left = length

    def read(self, n: int) -> bytes:
        if self._left <= 0:
            return b""
        data = os.pread(self._fd, min(n, self._left), self._pos)
        if not data:
            raise OSError(f"blob ended {self._left} bytes early")
        self._pos += len(data)
        self._left -= len(data)
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class LocalBackend:
    name = "local"

    def __init__(
        self, layout: Layout, *, flush: FlushMode = "auto", publish_dir_fsync: bool = True
    ) -> None:
        self.layout = layout
        self.flush_mode: FlushMode = flush
        # False only under SE_TEST_SKIP_PUBLISH_DIR_FSYNC: a deliberately broken build.
        self.publish_dir_fsync = publish_dir_fsync
        self._fs_flush: FileSystemFlush | None = None

    def prepare(self) -> None:
        for d in (self.layout.files_dir, self.layout.tmp_dir, self.layout.quarantine_dir):
            makedirs_durable(d)

    def sweep_tmp(self) -> int:
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
    def new_writer(self, txn: str, storage_path: str) -> LocalBlobWriter:
        return LocalBlobWriter(self.layout.tmp_dir / f"{txn}.blob", txn)

    def publish(
        self, writer: BlobWriter, attr: bytes, storage_path: str, fault: FaultPoint
    ) -> None:
        assert isinstance(writer, LocalBlobWriter)
        tmp_attr = self.layout.tmp_dir / f"{writer.txn}.attr"
        try:
            write_file_durable(tmp_attr, attr)
            fault("upload.after_tmp_attr")
            blob = self.layout.blob_path(storage_path)
            makedirs_durable(blob.parent)
            self._move_pair(writer.path, tmp_attr, storage_path, fault)
        finally:
            remove_if_exists(tmp_attr)
        if self.publish_dir_fsync:
            fsync_dir(blob.parent)
        fault("upload.after_dir_fsync")

    def stage_batch(self, items: Sequence[SmallWrite], fault: FaultPoint) -> list[OSError | None]:
        errors: list[OSError | None] = [None] * len(items)
        for i, it in enumerate(items):
            blob, attr = self._tmp_pair(it)
            try:
                write_file(blob, it.blob)
                fault("upload.after_tmp_blob")
                write_file(attr, it.attr)
                fault("upload.after_tmp_attr")
            except OSError as exc:
                errors[i] = exc
        live = [i for i, e in enumerate(errors) if e is None]
        if live:
            try:  # every blob and attr durable before any becomes visible
                self._flush().flush([p for i in live for p in self._tmp_pair(items[i])])
            except OSError as exc:
                for i in live:
                    errors[i] = exc
        return self._drop_failed(items, errors)

    def commit_batch(
        self, items: Sequence[SmallWrite], errors: list[OSError | None], fault: FaultPoint
    ) -> list[OSError | None]:
        errors = list(errors)
        folders: dict[Path, list[int]] = {}
        for i, it in enumerate(items):
            if errors[i] is not None:
                continue
            tmp_blob, tmp_attr = self._tmp_pair(it)
            blob = self.layout.blob_path(it.storage_path)
            try:
                makedirs_durable(blob.parent)
                self._move_pair(tmp_blob, tmp_attr, it.storage_path, fault)
            except OSError as exc:
                errors[i] = exc
                continue
            folders.setdefault(blob.parent, []).append(i)
        for folder, members in folders.items() if self.publish_dir_fsync else ():
            try:
                fsync_dir(folder)
            except OSError as exc:
                for i in members:
                    errors[i] = exc
        if any(e is None for e in errors):
            fault("upload.after_dir_fsync")
        return self._drop_failed(items, errors)

    def _move_pair(
        self, tmp_blob: Path, tmp_attr: Path, storage_path: str, fault: FaultPoint
    ) -> None:
        """Blob, then attr (the commit point), to their final names, never over a file."""
        blob = self.layout.blob_path(storage_path)
        move_noreplace(tmp_blob, blob)
        fault("upload.after_blob_rename")
        try:
            move_noreplace(tmp_attr, self.layout.attr_path(storage_path))
        except FileExistsError:
            os.unlink(blob)  # ours: the taken attr belongs to another file
            raise
        fault("upload.after_attr_rename")

    def _tmp_pair(self, item: SmallWrite) -> tuple[Path, Path]:
        return (
            self.layout.tmp_dir / f"{item.txn}.blob",
            self.layout.tmp_dir / f"{item.txn}.attr",
        )

    def _drop_failed(
        self, items: Sequence[SmallWrite], errors: list[OSError | None]
    ) -> list[OSError | None]:
        for item, err in zip(items, errors, strict=True):
            if err is not None:
                for path in self._tmp_pair(item):
                    remove_if_exists(path)
        return errors

    def _flush(self) -> FileSystemFlush:
        if self._fs_flush is None:
            self._fs_flush = FileSystemFlush(self.layout.data_dir, self.flush_mode)
        return self._fs_flush

    def replace_attr(self, storage_path: str, attr: bytes, fault: FaultPoint, kind: str) -> None:
        tmp = self.layout.tmp_dir / f"{os.urandom(8).hex()}.attr"
        try:
            write_file_durable(tmp, attr)
            fault(f"{kind}.after_tmp_attr")
            final = self.layout.attr_path(storage_path)
            os.replace(tmp, final)
            fault(f"{kind}.after_attr_rename")
        finally:
            remove_if_exists(tmp)
        fsync_dir(final.parent)

    def write_sidecar(self, path: str, data: bytes) -> None:
        final = self.layout.blob_path(path)
        tmp = self.layout.tmp_dir / f"{os.urandom(8).hex()}.sidecar"
        try:
            write_file_durable(tmp, data)
            os.replace(tmp, final)
        finally:
            remove_if_exists(tmp)
        fsync_dir(final.parent)

    def read_sidecar(self, path: str) -> bytes:
        return self.layout.blob_path(path).read_bytes()

    def remove_blob(self, storage_path: str) -> None:
        path = self.layout.blob_path(storage_path)
        if remove_if_exists(path):
            fsync_dir(path.parent)

    def remove_attr(self, storage_path: str) -> None:
        path = self.layout.attr_path(storage_path)
        if remove_if_exists(path):
            fsync_dir(path.parent)

    # -- reading --------------------------------------------------------------------
    def read_attr(self, storage_path: str) -> bytes:
        return self.layout.attr_path(storage_path).read_bytes()

    def attr_exists(self, storage_path: str) -> bool:
        return self.layout.attr_path(storage_path).exists()

    def blob_size(self, storage_path: str) -> int | None:
        try:
            return self.layout.blob_path(storage_path).stat().st_size
        except FileNotFoundError:
            return None

    def blob_mtime(self, storage_path: str) -> float | None:
        try:
            return self.layout.blob_path(storage_path).stat().st_mtime
        except FileNotFoundError:
            return None

    def open_reader(self, storage_path: str, start: int, length: int) -> LocalBlobReader:
        return LocalBlobReader(self.layout.blob_path(storage_path), start, length)

    def quarantine(self, storage_path: str, info: bytes | None = None) -> str:
        entry = new_entry(storage_path)
        dest = self.layout.quarantine_dir / entry
        makedirs_durable(dest.parent)
        for src, suffix in (
            (self.layout.attr_path(storage_path), ATTR_SUFFIX),
            (self.layout.blob_path(storage_path), ""),
        ):
            if src.exists():
                os.rename(src, Path(f"{dest}{suffix}"))
                fsync_dir(src.parent)
        if info is not None:
            write_file_durable(Path(f"{dest}{INFO_SUFFIX}"), info)
        fsync_dir(dest.parent)
        return str(dest)

    def _quarantine_path(self, entry: str, suffix: str = "") -> Path:
        return self.layout.quarantine_dir / (safe_relative(entry) + suffix)

    def quarantine_entries(self) -> Iterator[QuarantinedEntry]:
        yield from self._entries_below(str(self.layout.quarantine_dir), "")

    def _entries_below(self, folder: str, rel: str) -> Iterator[QuarantinedEntry]:
        """One folder at a time: its entries in name order, then its subfolders'."""
        try:
            with os.scandir(folder) as it:
                listing = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return
        files = [
            (rel + e.name, e.stat(follow_symlinks=False).st_size)
            for e in listing
            if e.is_file(follow_symlinks=False)
        ]
        yield from group(files)
        for e in listing:
            if e.is_dir(follow_symlinks=False):
                yield from self._entries_below(e.path, f"{rel}{e.name}/")

    def quarantined_entry(self, entry: str) -> QuarantinedEntry | None:
        sizes: dict[str, int | None] = {}
        for suffix in ("", ATTR_SUFFIX, INFO_SUFFIX):
            try:
                sizes[suffix] = self._quarantine_path(entry, suffix).stat().st_size
            except (FileNotFoundError, NotADirectoryError):
                sizes[suffix] = None
        if all(v is None for v in sizes.values()):
            return None
        return QuarantinedEntry(entry, sizes[""], sizes[ATTR_SUFFIX], sizes[INFO_SUFFIX])

    def read_quarantined(self, entry: str, suffix: str) -> bytes | None:
        try:
            return self._quarantine_path(entry, suffix).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def purge_quarantined(self, entry: str) -> int:
        freed = 0
        for suffix in ("", ATTR_SUFFIX, INFO_SUFFIX):
            path = self._quarantine_path(entry, suffix)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if remove_if_exists(path):
                freed += size
        if freed:
            fsync_dir(self._quarantine_path(entry).parent)
        return freed

    def walk(self) -> Iterator[tuple[str, int]]:
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

    def walk_folders(self, start_after: str = "", sizes: bool = True) -> Iterator[Folder]:
        yield from self._folders(str(self.layout.files_dir), "", start_after, sizes)

    def _folders(self, path: str, rel: str, after: str, sizes: bool) -> Iterator[Folder]:
        """One folder's files (names only are held, sorted; a folder is one hour of
        uploads), then its subfolders in name order, skipping those wholly <= ``after``.
        Files sit in hour folders only, so this preorder is storage-path order."""
        files: list[str] = []
        dirs: list[str] = []
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        dirs.append(e.name)
                    elif e.is_file(follow_symlinks=False) and rel + e.name > after:
                        files.append(e.name)
        except FileNotFoundError:
            return  # removed since its parent was listed
        if files:
            files.sort()
            entries: list[tuple[str, int | None]] = []
            for name in files:
                size: int | None = None
                if sizes:
                    try:
                        size = os.stat(f"{path}/{name}", follow_symlinks=False).st_size
                    except FileNotFoundError:
                        continue  # removed meanwhile (GC, quarantine)
                entries.append((name, size))
            yield rel.rstrip("/"), entries
        for name in sorted(dirs):
            sub = f"{rel}{name}/"
            # Every path below ``sub`` sorts before ``after``: skip the subtree.
            if sub < after and not after.startswith(sub):
                continue
            yield from self._folders(f"{path}/{name}", sub, after, sizes)

    def fs_usage(self) -> tuple[int, int] | None:
        st = os.statvfs(self.layout.data_dir)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
