"""The write-ahead journal: append-only segments with group commit and checkpoints.

Every mutation is a transaction: ``begin`` (what is about to happen), then ``commit``
or ``abort``, then for file changes ``catalog_done`` once the catalog row is written.
A transaction stays *open* until it is fully resolved; a segment is deleted by a
checkpoint once no open transaction began in it.

Group commit: appends queue their framed bytes; one flusher writes everything queued
and fsyncs once in a worker thread, then wakes every waiter whose bytes it carried.

Fail-stop: once a write or fsync of the journal fails, the journal is *failed* for the
life of the process. After a failed fsync the kernel may have dropped the dirty pages and
cleared the error ("fsyncgate"): a retried fsync would succeed without the data on disk.
After a short write the segment ends in a partial record, and recovery stops reading a
segment at its first damaged record, so anything appended behind it would be invisible.
So the descriptor is closed, nothing is appended again, every waiter of the failed batch
and every later ``begin``/``commit`` gets ``JournalFailed`` (503), readiness reports
``fail``, and only a restart (recovery reads what reached the disk, then a fresh segment)
brings writes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artstore.common.errors import ServiceUnavailable
from artstore.storage_element.fsutil import fsync_dir, makedirs_durable
from artstore.storage_element.wal.records import frame, list_segments, segment_name

log = logging.getLogger("artstore.storage_element.journal")

# How long outcome records (commit, abort, catalog_done) may wait for a flush to join.
LAZY_FLUSH_SECONDS = 0.05


class JournalFailed(ServiceUnavailable, OSError):
    """A write or fsync of the journal failed: no write is acknowledged until a restart.

    Also an OSError, which it stands for: write paths that pass I/O errors along (the
    group commit, undo paths) carry it unchanged, and the error handler still answers
    503 JOURNAL_FAILED (ArtStoreError comes first in its MRO). Its errno is None, so no
    ENOSPC-to-507 mapping mistakes it for a full data disk.
    """

    code = "JOURNAL_FAILED"


class Journal:
    def __init__(self, wal_dir: Path, segment_bytes: int) -> None:
        self.wal_dir = wal_dir
        self.segment_bytes = segment_bytes
        self._fd = -1
        self._segment = 0
        self._segment_size = 0
        self._buf: list[tuple[bytes, str | None, asyncio.Future[None] | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._open: set[str] = set()
        self._txn_segment: dict[str, int] = {}
        self._pending_begin: dict[str, asyncio.Future[None]] = {}
        self._lazy: asyncio.TimerHandle | None = None
        self.last_checkpoint_at: datetime | None = None
        self.appended = 0
        self.fsyncs = 0
        # The first write/fsync error; set once, never cleared (see the module docstring).
        self.failure: OSError | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def failed_error(self) -> JournalFailed:
        """A fresh error for one caller (one instance raised twice would chain tracebacks)."""
        exc = self.failure
        err = JournalFailed(
            "the write-ahead journal failed; writes are refused until the storage element restarts",
            details={"reason": f"{type(exc).__name__}: {exc}" if exc else "unknown"},
        )
        err.__cause__ = exc
        return err

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failed_error()

    # -- lifecycle ---------------------------------------------------------------
    def open_new_segment(self) -> None:
        """Start a fresh segment after every existing one (never append after a torn tail)."""
        makedirs_durable(self.wal_dir)
        existing = list_segments(self.wal_dir)
        self._segment = (existing[-1][0] + 1) if existing else 1
        self._open_segment_file()

    def _open_segment_file(self) -> None:
        path = self.wal_dir / segment_name(self._segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._segment_size = 0
        fsync_dir(self.wal_dir)

    async def close(self) -> None:
        if not self.failed:
            with contextlib.suppress(JournalFailed):  # failing now: logged by _fail
                await self.flush()
        if self._lazy is not None:
            self._lazy.cancel()
            self._lazy = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- transactions --------------------------------------------------------------
    async def begin(self, kind: str, data: dict[str, Any], *, wait: bool = True) -> str:
        """Journal the intent. With ``wait=False`` the caller must ``await durable(txn)``
        before its first visible change."""
        self._check()
        txn = uuid.uuid4().hex
        self._open.add(txn)
        fut = self._append({"op": "begin", "txn": txn, "kind": kind, "data": data}, txn)
        if wait:
            await fut
        else:
            self._pending_begin[txn] = fut
        return txn

    async def durable(self, txn: str) -> None:
        fut = self._pending_begin.pop(txn, None)
        if fut is not None:
            await fut

    async def commit(self, txn: str, *, owes_catalog: bool) -> None:
        """Record the outcome. Not awaited for durability: recovery re-derives a lost
        commit from the attr's presence, so the fsync can ride on a later group.

        Raises ``JournalFailed`` once the journal failed: the change may have happened
        (recovery decides from the attr), but it is not acknowledged."""
        self._check()
        self._append({"op": "commit", "txn": txn}, None, durable=False)
        if not owes_catalog:
            self._close_txn(txn)

    async def abort(self, txn: str) -> None:
        fut = self._pending_begin.pop(txn, None)
        if fut is not None and fut.done() and not fut.cancelled():
            fut.exception()  # consumed: the abort itself is the answer to it
        if self.failed:
            # Undo paths call this; recovery decides the change from what is on disk.
            self._close_txn(txn)
            return
        self._append({"op": "abort", "txn": txn}, None, durable=False)
        self._close_txn(txn)

    async def owe(self, txn: str, file_id: str) -> None:
        """Carry an owed catalog update into the current segment (used by recovery)."""
        self._check()
        self._open.add(txn)
        await self._append({"op": "owed", "txn": txn, "file_id": file_id}, txn)

    async def catalog_done(self, txn: str) -> None:
        if self.failed:
            return  # stays owed in the journal on disk; replay after the restart is idempotent
        self._append({"op": "catalog_done", "txn": txn}, None, durable=False)
        self._close_txn(txn)

    def _close_txn(self, txn: str) -> None:
        self._open.discard(txn)
        self._txn_segment.pop(txn, None)

    @property
    def pending(self) -> int:
        return len(self._open)

    # -- group commit ----------------------------------------------------------------
    def _append(
        self, payload: dict[str, Any], txn: str | None, *, durable: bool = True
    ) -> asyncio.Future[None]:
        payload["at"] = datetime.now(UTC).isoformat()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._buf.append((frame(payload), txn, fut if durable else None))
        if not durable:
            fut.set_result(None)
        self.appended += 1
        if self._flusher is None or self._flusher.done():
            if durable:
                self._flusher = loop.create_task(self._flush_loop())
            elif self._lazy is None:
                # Outcome records need no fsync of their own: they ride on the next
                # durable append's flush, or on this timer when none comes.
                self._lazy = loop.call_later(LAZY_FLUSH_SECONDS, self._lazy_flush)
        return fut

    def _lazy_flush(self) -> None:
        self._lazy = None
        if self._buf and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def flush(self) -> None:
        """Wait until everything appended so far is on stable storage."""
        self._check()
        if self._buf:
            fut = self._append({"op": "flush"}, None)
            await fut
        elif self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush_loop(self) -> None:
        while self._buf:
            batch, self._buf = self._buf, []
            data = b"".join(item[0] for item in batch)
            try:
                segment = await asyncio.to_thread(self._write_and_sync, data)
            except OSError as exc:
                self._fail(exc)
                # This batch, and whatever queued behind it, will never be written.
                waiting, self._buf = [*batch, *self._buf], []
                for _, _, fut in waiting:
                    if fut is not None and not fut.done():
                        fut.set_exception(self.failed_error())
                return
            for _, txn, fut in batch:
                if txn is not None and txn in self._open:
                    self._txn_segment.setdefault(txn, segment)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    def _fail(self, exc: OSError) -> None:
        self.failure = exc
        if self._lazy is not None:
            self._lazy.cancel()
            self._lazy = None
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):  # the descriptor is done with either way
                os.close(fd)
        log.critical(
            "journal write failed: writes are refused until restart",
            extra={"fields": {"error": f"{type(exc).__name__}: {exc}", "segment": self._segment}},
        )

    def _write_and_sync(self, data: bytes) -> int:
        if self._segment_size and self._segment_size + len(data) > self.segment_bytes:
            os.fsync(self._fd)
            os.close(self._fd)
            self._segment += 1
            self._open_segment_file()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)
        self.fsyncs += 1
        self._segment_size += len(data)
        return self._segment

    # -- checkpoint ------------------------------------------------------------------
    async def checkpoint(self) -> int:
        """Delete segments that hold no open transaction. Returns how many were deleted.

        Nothing once the journal failed: which transactions reached the disk is unknown."""
        if self.failed:
            return 0
        await self.flush()
        unwritten = any(t not in self._txn_segment for t in self._open)
        floor = min(self._txn_segment.values(), default=self._segment)
        if unwritten:
            floor = min(floor, self._segment)
        floor = min(floor, self._segment)
        deleted = await asyncio.to_thread(self._delete_below, floor)
        self.last_checkpoint_at = datetime.now(UTC)
        return deleted

    def _delete_below(self, floor: int) -> int:
        deleted = 0
        for number, path in list_segments(self.wal_dir):
            if number < floor:
                path.unlink()
                deleted += 1
        if deleted:
            fsync_dir(self.wal_dir)
        return deleted

    def segment_count(self) -> int:
        return len(list_segments(self.wal_dir))
