"""An in-memory backend (as OpenStack Swift's ``mem_diskfile``): the Backend and
BatchPublisher protocols over dicts, so FileStore and maintenance tests run in-process.

It keeps the local backend's rules that matter to callers: nothing is visible before
publish, the attr is the commit point, publishing never overwrites (FileExistsError,
leaving nothing of the write at the final names), and quarantine moves, never deletes.
Thread-safe: the services call it from worker threads.
"""

from __future__ import annotations

import errno
import hashlib
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from artstore.storage_element.backends.base import (
    BlobWriter,
    FaultPoint,
    Folder,
    SmallWrite,
    folders_of,
)
from artstore.storage_element.backends.quarantine_entries import (
    INFO_SUFFIX,
    QuarantinedEntry,
    group,
    new_entry,
)
from artstore.storage_element.layout import ATTR_SUFFIX, safe_relative

_Q = "quarantine/"


def _exists(path: str) -> FileExistsError:
    return FileExistsError(errno.EEXIST, "already exists", path)


class MemoryBlobWriter:
    def __init__(self, backend: MemoryBackend, txn: str) -> None:
        self._b = backend
        self.txn = txn
        self.size = 0
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        with backend.lock:
            backend.tmp[f"{txn}.blob"] = self._buf

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._buf += data
        self.size += len(data)

    def finish(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        with self._b.lock:
            self._b.tmp.pop(f"{self.txn}.blob", None)


class MemoryBlobReader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int) -> bytes:
        out, self._data = self._data[:n], self._data[n:]
        return out

    def close(self) -> None:
        self._data = b""


class MemoryBackend:
    name = "memory"

    def __init__(self, total_bytes: int | None = None) -> None:
        self.lock = threading.RLock()
        self.blobs: dict[str, bytes] = {}
        self.attrs: dict[str, bytes] = {}
        self.mtimes: dict[str, float] = {}
        self.tmp: dict[str, bytearray] = {}
        self.quarantined: dict[str, bytes] = {}
        self.quarantine_info: dict[str, bytes] = {}  # entry -> its info document
        self.total_bytes = total_bytes

    # -- setup ---------------------------------------------------------------------------
    def prepare(self) -> None:
        return None

    def sweep_tmp(self) -> int:
        with self.lock:
            n = len(self.tmp)
            self.tmp.clear()
            return n

    # -- writing -------------------------------------------------------------------------
    def new_writer(self, txn: str, storage_path: str) -> MemoryBlobWriter:
        safe_relative(storage_path)
        return MemoryBlobWriter(self, txn)

    def _place(self, storage_path: str, blob: bytes, attr: bytes, fault: FaultPoint) -> None:
        with self.lock:
            if storage_path in self.blobs:
                raise _exists(storage_path)
            self.blobs[storage_path] = blob
            self.mtimes[storage_path] = datetime.now(UTC).timestamp()
        fault("upload.after_blob_rename")
        with self.lock:
            if storage_path in self.attrs:
                del self.blobs[storage_path]  # ours: leave nothing at the final names
                raise _exists(storage_path)
            self.attrs[storage_path] = attr
        fault("upload.after_attr_rename")

    def publish(
        self, writer: BlobWriter, attr: bytes, storage_path: str, fault: FaultPoint
    ) -> None:
        assert isinstance(writer, MemoryBlobWriter)
        fault("upload.after_tmp_attr")
        with self.lock:
            blob = bytes(self.tmp.pop(f"{writer.txn}.blob", b""))
        self._place(storage_path, blob, attr, fault)
        fault("upload.after_dir_fsync")

    def stage_batch(self, items: Sequence[SmallWrite], fault: FaultPoint) -> list[OSError | None]:
        for _ in items:
            fault("upload.after_tmp_blob")
            fault("upload.after_tmp_attr")
        return [None] * len(items)

    def commit_batch(
        self, items: Sequence[SmallWrite], errors: list[OSError | None], fault: FaultPoint
    ) -> list[OSError | None]:
        errors = list(errors)
        for i, it in enumerate(items):
            if errors[i] is None:
                try:
                    self._place(it.storage_path, it.blob, it.attr, fault)
                except OSError as exc:
                    errors[i] = exc
        if any(e is None for e in errors):
            fault("upload.after_dir_fsync")
        return errors

    def replace_attr(self, storage_path: str, attr: bytes, fault: FaultPoint, kind: str) -> None:
        fault(f"{kind}.after_tmp_attr")
        with self.lock:
            self.attrs[storage_path] = attr
        fault(f"{kind}.after_attr_rename")

    def write_sidecar(self, path: str, data: bytes) -> None:
        safe_relative(path)
        with self.lock:
            self.blobs[path] = bytes(data)
            self.mtimes[path] = datetime.now(UTC).timestamp()

    def read_sidecar(self, path: str) -> bytes:
        with self.lock:
            try:
                return self.blobs[path]
            except KeyError:
                raise FileNotFoundError(path) from None

    def remove_blob(self, storage_path: str) -> None:
        with self.lock:
            self.blobs.pop(storage_path, None)
            self.mtimes.pop(storage_path, None)

    def remove_attr(self, storage_path: str) -> None:
        with self.lock:
            self.attrs.pop(storage_path, None)

    # -- reading -------------------------------------------------------------------------
    def read_attr(self, storage_path: str) -> bytes:
        with self.lock:
            try:
                return self.attrs[storage_path]
            except KeyError:
                raise FileNotFoundError(storage_path) from None

    def attr_exists(self, storage_path: str) -> bool:
        with self.lock:
            return storage_path in self.attrs

    def blob_size(self, storage_path: str) -> int | None:
        with self.lock:
            blob = self.blobs.get(storage_path)
            return None if blob is None else len(blob)

    def blob_mtime(self, storage_path: str) -> float | None:
        with self.lock:
            return self.mtimes.get(storage_path)

    def open_reader(self, storage_path: str, start: int, length: int) -> MemoryBlobReader:
        with self.lock:
            try:
                blob = self.blobs[storage_path]
            except KeyError:
                raise FileNotFoundError(storage_path) from None
        return MemoryBlobReader(blob[start : start + length])

    def quarantine(self, storage_path: str, info: bytes | None = None) -> str:
        entry = new_entry(storage_path)
        dest = f"{_Q}{entry}"
        with self.lock:
            if storage_path in self.attrs:
                self.quarantined[dest + ATTR_SUFFIX] = self.attrs.pop(storage_path)
            if storage_path in self.blobs:
                self.quarantined[dest] = self.blobs.pop(storage_path)
                self.mtimes.pop(storage_path, None)
            if info is not None:  # apart: ``quarantined`` holds what was moved
                self.quarantine_info[entry] = info
        return f"memory://{dest}"

    def _quarantine_listing(self) -> list[tuple[str, int]]:
        with self.lock:
            names = [(k[len(_Q) :], len(v)) for k, v in self.quarantined.items()]
            names += [(e + INFO_SUFFIX, len(v)) for e, v in self.quarantine_info.items()]
        return sorted(names)

    def quarantine_entries(self) -> Iterator[QuarantinedEntry]:
        yield from group(self._quarantine_listing())

    def quarantined_entry_parts(self, entry: str) -> dict[str, bytes]:
        with self.lock:
            parts = {s: self.quarantined.get(f"{_Q}{entry}{s}") for s in ("", ATTR_SUFFIX)}
            parts[INFO_SUFFIX] = self.quarantine_info.get(entry)
        return {s: v for s, v in parts.items() if v is not None}

    def quarantined_entry(self, entry: str) -> QuarantinedEntry | None:
        parts = self.quarantined_entry_parts(entry)
        if not parts:
            return None
        sizes = {s: len(v) for s, v in parts.items()}
        return QuarantinedEntry(
            entry, sizes.get(""), sizes.get(ATTR_SUFFIX), sizes.get(INFO_SUFFIX)
        )

    def read_quarantined(self, entry: str, suffix: str) -> bytes | None:
        return self.quarantined_entry_parts(entry).get(suffix)

    def purge_quarantined(self, entry: str) -> int:
        with self.lock:
            freed = sum(len(v) for v in self.quarantined_entry_parts(entry).values())
            for s in ("", ATTR_SUFFIX):
                self.quarantined.pop(f"{_Q}{entry}{s}", None)
            self.quarantine_info.pop(entry, None)
        return freed

    def walk(self) -> Iterator[tuple[str, int]]:
        with self.lock:
            listing = [(p, len(b)) for p, b in self.blobs.items()]
            listing += [(p + ATTR_SUFFIX, len(a)) for p, a in self.attrs.items()]
        yield from sorted(listing)

    def walk_folders(self, start_after: str = "", sizes: bool = True) -> Iterator[Folder]:
        # Through ``walk`` (sorted here: a test may list what it likes).
        yield from folders_of(sorted(e for e in self.walk() if e[0] > start_after))

    def fs_usage(self) -> tuple[int, int] | None:
        if self.total_bytes is None:
            return None
        with self.lock:
            used = sum(map(len, self.blobs.values())) + sum(map(len, self.attrs.values()))
        return self.total_bytes, max(0, self.total_bytes - used)
