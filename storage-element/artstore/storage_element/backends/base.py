"""What a storage backend must do. Local disk and S3 implement it.

Every method blocks; services call them through ``asyncio.to_thread``. Paths are
*storage paths* (``YYYY/MM/DD/HH/<storage_name>``); the attr of a storage path lives
at ``<storage path>.attr.json`` on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from artstore.storage_element.backends.quarantine_entries import QuarantinedEntry

FaultPoint = Callable[[str], None]
# One folder of a walk: its path relative to the files' root (``YYYY/MM/DD/HH``), and
# its objects' names and sizes, sorted by name.
Folder = tuple[str, list[tuple[str, int | None]]]


def folders_of(listing: Iterable[tuple[str, int]]) -> Iterator[Folder]:
    """Group a sorted (relative path, size) listing by folder: a folder's objects are
    contiguous in it (a storage path's attr, blob and sidecars share its folder)."""
    folder: str | None = None
    entries: list[tuple[str, int | None]] = []
    for rel, size in listing:
        parent, _, name = rel.rpartition("/")
        if parent != folder:
            if folder is not None:
                yield folder, entries
            folder, entries = parent, []
        entries.append((name, size))
    if folder is not None:
        yield folder, entries


@dataclass(frozen=True)
class SmallWrite:
    """A whole upload held in memory, published with others in one group."""

    txn: str
    storage_path: str
    blob: bytes
    attr: bytes


@runtime_checkable
class BatchPublisher(Protocol):
    """A backend that can publish many small uploads sharing their durability flushes.

    Two steps, so that the journal's fsync of the uploads' ``begin`` records can run
    while the group is staged: nothing is visible before ``commit_batch``.
    """

    def stage_batch(self, items: Sequence[SmallWrite], fault: FaultPoint) -> list[OSError | None]:
        """Write every blob and attr into ``tmp/`` and make them all durable with one
        flush. Returns each item's error (None: staged); a failed item leaves nothing."""
        ...

    def commit_batch(
        self, items: Sequence[SmallWrite], errors: list[OSError | None], fault: FaultPoint
    ) -> list[OSError | None]:
        """For each staged item (``errors[i]`` None): rename the blob, then the attr (the
        commit point), then fsync each folder once. Returns each item's error; a failed
        item leaves nothing in ``tmp/`` (a renamed blob or attr is the caller's to undo).
        ``fault`` sees the upload steps in the order of the single-file path."""
        ...


class BlobWriter(Protocol):
    """A blob being received: hashed as written, not visible until published."""

    size: int

    def write(self, data: bytes) -> None: ...

    def finish(self) -> str:
        """Make what was written durable (not yet visible); return its SHA-256 hex."""
        ...

    def discard(self) -> None:
        """Drop everything written (safe to call more than once)."""
        ...


class BlobReader(Protocol):
    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the range, ``b""`` at its end."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str

    def prepare(self) -> None:
        """Create what the backend needs (folders, bucket checks)."""
        ...

    def sweep_tmp(self) -> int:
        """Drop every in-flight write left by a crash; return how many were dropped."""
        ...

    def new_writer(self, txn: str, storage_path: str) -> BlobWriter: ...

    def publish(
        self, writer: BlobWriter, attr: bytes, storage_path: str, fault: FaultPoint
    ) -> None:
        """Make the blob visible, then its attr (the commit point), durably.

        Calls ``fault`` with ``upload.after_tmp_attr``, ``upload.after_blob_rename``,
        ``upload.after_attr_rename`` and ``upload.after_dir_fsync`` as it passes them.
        """
        ...

    def replace_attr(self, storage_path: str, attr: bytes, fault: FaultPoint, kind: str) -> None:
        """Durably replace an attr; calls ``fault`` with ``<kind>.after_tmp_attr`` and
        ``<kind>.after_attr_rename``."""
        ...

    def read_attr(self, storage_path: str) -> bytes:
        """The attr's bytes; FileNotFoundError when there is none."""
        ...

    def write_sidecar(self, path: str, data: bytes) -> None:
        """Durably store a small object (a preview sidecar, issue 16) at ``path`` (a
        storage-relative path next to a blob): temp, flush, rename, folder flush on
        disk; one PUT on S3. It is visible and durable when this returns.
        ``blob_size``, ``blob_mtime``, ``remove_blob`` and ``read_sidecar`` take the
        same path."""
        ...

    def read_sidecar(self, path: str) -> bytes:
        """A sidecar's bytes; FileNotFoundError when there is none."""
        ...

    def attr_exists(self, storage_path: str) -> bool: ...

    def blob_size(self, storage_path: str) -> int | None:
        """The blob's size, or None when it does not exist."""
        ...

    def blob_mtime(self, storage_path: str) -> float | None:
        """When the blob was last written (Unix time), or None when it does not exist."""
        ...

    def remove_blob(self, storage_path: str) -> None: ...

    def remove_attr(self, storage_path: str) -> None: ...

    def open_reader(self, storage_path: str, start: int, length: int) -> BlobReader: ...

    def quarantine(self, storage_path: str, info: bytes | None = None) -> str:
        """Move the attr and the blob of ``storage_path`` aside (never delete), then
        store ``info`` (why, which file) beside them; return where."""
        ...

    def quarantine_entries(self) -> Iterator[QuarantinedEntry]:
        """Every quarantined entry, in one stable order, listed lazily (never all at
        once: a quarantine may hold many)."""
        ...

    def quarantined_entry(self, entry: str) -> QuarantinedEntry | None:
        """That entry, or None when nothing of it is stored."""
        ...

    def read_quarantined(self, entry: str, suffix: str) -> bytes | None:
        """The bytes of ``<entry><suffix>`` (its attr or its info), None when absent."""
        ...

    def purge_quarantined(self, entry: str) -> int:
        """Remove the entry for good: blob, attr, then info (the last, so a purge cut
        short still lists its reason); return the bytes removed."""
        ...

    def walk(self) -> Iterator[tuple[str, int]]:
        """(relative path, size) of every stored object: blobs, attrs and sidecars."""
        ...

    def walk_folders(self, start_after: str = "", sizes: bool = True) -> Iterator[Folder]:
        """What ``walk`` finds, one folder at a time (its relative path, then its
        entries: (name, size)), in storage-path order: folders in name order, each
        folder's entries sorted. Only objects whose relative path is greater than
        ``start_after`` (a resumed walk skips whole folders). ``sizes`` False: sizes
        may be None where they would cost a call per object (local disk)."""
        ...

    def fs_usage(self) -> tuple[int, int] | None:
        """(total, free) bytes of the filesystem, or None when it has none (S3)."""
        ...
