"""The file index at start and stop (issue 19): trusted after a clean stop, else rebuilt.

Clean stop: the writer commits what is pending, SQLite checkpoints its WAL into the
database file, the file is fsynced, then ``index.clean`` (the capacity counters) is
written durably. Start: when the mark is there it is removed durably *before* anything
can change a file (so a crash from now on finds no mark), the counters are taken from
it and the paths WAL recovery named are read again into the index: ready at once.
Anything else (no mark after a crash, kill -9 or power loss; no index file; a file
SQLite refuses) deletes the index and rebuilds it: one walk of the backend, names and
sizes only, streamed into SQLite (the SE is ready after it), then a background task
reads the attrs of the rows in batches to learn their file id, status and upload time
(lookups work meanwhile; a list from the index waits for it, see files/queries.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from artstore.storage_element.backends.local import LocalBackend
from artstore.storage_element.files.index import (
    Entry,
    FileIndex,
    IndexCorrupt,
    attr_storage_path,
    entry_of,
)
from artstore.storage_element.fsutil import fsync_dir, remove_if_exists, write_file_durable

if TYPE_CHECKING:
    from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.index")

FILL_BATCH = 2000
_FILL_RETRY_SECONDS = 5.0


class IndexStats:
    """How the index was made ready at the last start (tests and logs read it)."""

    def __init__(self) -> None:
        self.walks = 0  # rebuilds by a walk of the backend
        self.trusted = False
        self.rechecked = 0
        self.corrupt = 0
        self.filled = 0
        self.sizes_owed = False  # used bytes not counted yet (names-only rebuild)


def _read_mark(index: FileIndex) -> dict[str, int] | None:
    try:
        data = json.loads(index.mark.read_bytes())
        return {
            "used_bytes": int(data["used_bytes"]),
            "file_count": int(data["file_count"]),
            # 1: stopped before the used bytes were counted (a names-only rebuild)
            "used_bytes_pending": int(data.get("used_bytes_pending", 0)),
        }
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        log.warning("file index clean mark unreadable: rebuilding the index")
        return None


def open_index(node: SEState, recovered_paths: set[str]) -> None:
    """Blocking: make ``node.index`` usable and set the capacity counters."""
    index = node.index
    stats = node.index_stats
    mark = _read_mark(index)
    if index.mark.exists():
        # Durably gone before any change: from now on a crash means "not clean".
        remove_if_exists(index.mark)
        fsync_dir(index.data_dir)
    trusted = mark is not None and node.backend.name != "memory" and index.path.exists()
    if not trusted:
        index.remove_files()
    try:
        index.open()
    except IndexCorrupt as exc:
        stats.corrupt += 1
        log.error("file index unusable, rebuilding it: %s", exc)
        index.remove_files()
        index.open()
        trusted = False
    if trusted and mark is not None:
        index.ensure_indexes()
        node.capacity.used_bytes = mark["used_bytes"]
        node.capacity.file_count = mark["file_count"]
        # The stat walk a names-only rebuild owed is owed again (start() runs it).
        stats.sizes_owed = bool(mark["used_bytes_pending"])
        stats.trusted = True
        stats.rechecked = _recheck(node, recovered_paths)
        return
    _rebuild(node)


def _rebuild(node: SEState) -> None:
    used = count = 0
    backend = node.backend
    # Names only on a local disk without SE_MAX_CAPACITY: the used bytes are then only
    # reported (room comes from statvfs), so their stat walk runs after the SE is ready.
    names_only = isinstance(backend, LocalBackend) and node.settings.max_capacity <= 0

    def names() -> Iterator[str]:
        nonlocal used, count
        if isinstance(backend, LocalBackend):
            walked = walk_local(str(backend.layout.files_dir), sizes=not names_only)
        else:
            walked = backend.walk()  # S3: the listing carries the sizes
        for rel, size in walked:
            used += size
            storage_path = attr_storage_path(rel)
            if storage_path is not None:
                count += 1
                yield storage_path

    began = time.monotonic()
    rows = node.index.load_names(names())
    loaded = time.monotonic()
    node.index.ensure_indexes()
    built = time.monotonic()
    node.capacity.used_bytes = used
    node.capacity.file_count = count
    node.index_stats.walks += 1
    node.index_stats.sizes_owed = names_only
    log.warning(
        "file index rebuilt by a walk of the backend",
        extra={
            "fields": {
                "files": count,
                "rows": rows,
                "used_bytes": None if names_only else used,
                "walk_and_load_s": round(loaded - began, 2),
                "sql_indexes_s": round(built - loaded, 2),
            }
        },
    )


async def count_used_bytes(node: SEState) -> None:
    """After a names-only rebuild: the used bytes by a stat walk, in one worker thread.
    Changes made meanwhile are already counted in ``used_bytes`` (what it grew or shrank
    by since the walk began is kept); one the walk also saw may count twice, until the
    next clean restart's counters (bounded by the writes during the walk)."""
    backend = node.backend
    assert isinstance(backend, LocalBackend)
    root = str(backend.layout.files_dir)
    before = node.capacity.used_bytes
    walked = await asyncio.to_thread(lambda: sum(size for _, size in walk_local(root)))
    node.capacity.used_bytes = walked + (node.capacity.used_bytes - before)
    node.index_stats.sizes_owed = False
    log.info("used bytes counted", extra={"fields": {"used_bytes": node.capacity.used_bytes}})


def walk_local(root: str, sizes: bool = True) -> Iterator[tuple[str, int]]:
    """LocalBackend.walk's (relative path, size) pairs, cheaper per entry: relative
    paths built from the folder's prefix (no ``relpath``), the type from the entry
    (d_type: no stat). ``sizes`` False: no stat at all, every size 0."""
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{prefix}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size if sizes else 0
                    yield prefix + entry.name, size


def _recheck(node: SEState, paths: set[str]) -> int:
    """The paths WAL recovery resolved: their attrs (the truth) into the index."""
    for path in sorted(paths):
        try:
            attr = node.read_attr_sync(path)
        except ValueError:  # not a storage path (a malformed record set aside)
            continue
        if attr is None:
            node.index.discard(path)
        else:
            node.index.put(path, entry_of(attr))
    node.index.flush_sync()
    return len(paths)


async def fill_forever(node: SEState) -> None:
    """Read the attrs of rows not read yet, FILL_BATCH per worker-thread hop."""
    index = node.index
    began = time.monotonic()
    while True:
        paths = await asyncio.to_thread(index.unknown, FILL_BATCH)
        if not paths:
            break
        try:
            await asyncio.to_thread(_fill_batch, node, paths)
        except OSError as exc:
            log.error("file index fill failed, retrying: %s", exc)
            await asyncio.sleep(_FILL_RETRY_SECONDS)
    index.filled.set()
    log.info(
        "file index complete",
        extra={
            "fields": {
                "rows_read": node.index_stats.filled,
                "seconds": round(time.monotonic() - began, 2),
            }
        },
    )


def _fill_batch(node: SEState, paths: list[str]) -> None:
    found: list[tuple[str, Entry | None]] = []
    for path in paths:
        try:
            raw = node.backend.read_attr(path)
        except FileNotFoundError:
            found.append((path, None))
            continue
        entry = _quick_entry(raw)
        if entry is None:  # damaged: the full decode judges it (and quarantines it)
            attr = node.read_attr_sync(path)
            entry = entry_of(attr) if attr is not None else None
        found.append((path, entry))
    node.index.fill(found)
    node.index_stats.filled += len(found)


def _quick_entry(raw: bytes) -> Entry | None:
    """The three fields the index needs, without the full validation (a list reads
    its page's attrs through the full decode anyway)."""
    try:
        data = json.loads(raw)
        at = datetime.fromisoformat(data["uploaded_at"])
        file_id, status = data["file_id"], data["status"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(file_id, str) or not isinstance(status, str) or at.tzinfo is None:
        return None
    return Entry(file_id, status, at)


async def start(node: SEState, recovered_paths: set[str]) -> None:
    await asyncio.to_thread(open_index, node, recovered_paths)
    if node.index_stats.sizes_owed:
        node.background(count_used_bytes(node))
    if await asyncio.to_thread(node.index.unknown, 1):
        node.background(fill_forever(node))
    else:
        node.index.filled.set()


def close(node: SEState) -> None:
    """Blocking: close the index; mark it clean when everything reached its file."""
    index = node.index
    if not index.is_open:
        return
    index.close()
    if not index.clean or node.backend.name == "memory":
        return  # next start rebuilds
    fd = os.open(index.path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp = index.data_dir / f"{index.mark.name}.tmp"
    # Used bytes not counted yet (stopped soon after a names-only rebuild): the mark says
    # so and the next start counts them again, instead of walking to rebuild the index.
    mark = {
        "used_bytes": node.capacity.used_bytes,
        "file_count": node.capacity.file_count,
        "used_bytes_pending": int(node.index_stats.sizes_owed),
    }
    write_file_durable(tmp, json.dumps(mark).encode())
    os.replace(tmp, index.mark)
    fsync_dir(index.data_dir)
