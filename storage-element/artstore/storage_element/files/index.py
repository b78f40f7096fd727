"""The file index (issue 19): one SQLite table in the data directory, one row per stored
copy, so that a lookup by id and a list page cost O(page), not O(files), in memory too.

A row is derived data: its storage path, the uuid8 of the name (the lookup key: a name
ends in ``_<YYYYMMDDTHHMMSS>_<uuid8>[.ext]``), and, once its attr has been read, the
file id, status and upload time that a list pages and counts by. The attr stays the
truth: a lookup reads the candidates' attrs, a list reads its page's attrs.

Writes never block the event loop: ``put``/``discard`` go into an in-memory overlay that
one writer thread commits in batches; lookups consult the overlay (taken before the
database is read, so that a batch being committed is seen either way). A list first
waits for the overlay to be committed (``flush_sync``, in its worker thread).

The file is trusted at start only after a clean stop (``CLEAN_MARK``, see
``files/index_start.py``); synchronous=OFF is therefore enough while running. The page
cache is bounded (``SE_INDEX_CACHE_MB``, shared by the writer and the readers) and
SQLite's mmap stays off, so the index's resident memory does not grow with the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.layout import ATTR_SUFFIX

log = logging.getLogger("artstore.storage_element.index")

_TAIL = re.compile(r"_\d{8}T\d{6}_([0-9a-f]{8})(\.[^./]*)?$")
INDEX_FILE = "index.sqlite3"
CLEAN_MARK = "index.clean"
SCHEMA = 1
BUILD_CACHE_KIB = 64 * 1024  # sort memory while the SQL indexes are built
READERS = 3  # reader connections (each has its share of the page cache)
_BATCH = 5000
_RETRY_SECONDS = 1.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNKNOWN = "?"  # counts' key (in _DDL too) for rows whose attr has not been read yet

_DDL = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    path TEXT NOT NULL,
    key INTEGER NOT NULL,
    file_id BLOB,
    status TEXT,
    uploaded_at INTEGER
);
CREATE TABLE IF NOT EXISTS counts(status TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""
# Built after a bulk load (faster than growing them row by row; the triggers that keep
# ``counts`` too: load_names sets its count once). files_order holds the
# path too: a page is read from the index alone, the rows it skips never touched.
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS files_path ON files(path);
CREATE INDEX IF NOT EXISTS files_key ON files(key);
CREATE INDEX IF NOT EXISTS files_order ON files(status, uploaded_at DESC, file_id DESC, path);
CREATE TRIGGER IF NOT EXISTS files_ins AFTER INSERT ON files BEGIN
    INSERT INTO counts VALUES (coalesce(new.status, '?'), 1)
    ON CONFLICT(status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS files_del AFTER DELETE ON files BEGIN
    UPDATE counts SET n = n - 1 WHERE status = coalesce(old.status, '?');
END;
CREATE TRIGGER IF NOT EXISTS files_upd AFTER UPDATE OF status ON files BEGIN
    UPDATE counts SET n = n - 1 WHERE status = coalesce(old.status, '?');
    INSERT INTO counts VALUES (coalesce(new.status, '?'), 1)
    ON CONFLICT(status) DO UPDATE SET n = n + 1;
END;
"""
_UPSERT = (
    "INSERT INTO files(path, key, file_id, status, uploaded_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT(path) DO UPDATE SET key = excluded.key, file_id = excluded.file_id,"
    " status = excluded.status, uploaded_at = excluded.uploaded_at"
)


def uuid8_of(storage_path: str) -> str | None:
    m = _TAIL.search(storage_path.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def attr_storage_path(relative: str) -> str | None:
    """The storage path an attr file belongs to, or None for a blob."""
    return relative[: -len(ATTR_SUFFIX)] if relative.endswith(ATTR_SUFFIX) else None


def key_of(storage_path: str) -> int | None:
    k = uuid8_of(storage_path)
    return int(k, 16) if k else None


def micros(at: datetime) -> int:
    """Microseconds since the epoch: orders exactly as PostgreSQL's timestamptz."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - EPOCH) // timedelta(microseconds=1)


def id_bytes(file_id: str) -> bytes | str:
    """A file id as the catalog's uuid column orders it (16 bytes, big-endian); text
    that is no uuid stays text (it cannot come from an upload, but an attr says it)."""
    try:
        return uuid.UUID(file_id).bytes
    except ValueError:
        return file_id


@dataclass(frozen=True)
class Entry:
    """What the index knows of one copy (from its attr)."""

    file_id: str
    status: str
    uploaded_at: datetime


def entry_of(attr: Attr) -> Entry:
    return Entry(attr.file_id, attr.status, attr.uploaded_at)


# path -> (key, entry) to put, or (key, None) to remove
_Change = tuple[int, Entry | None]


class IndexCorrupt(Exception):
    """The index file cannot be used: it is deleted and rebuilt."""


class FileIndex:
    def __init__(self, data_dir: Path, cache_mb: int = 16) -> None:
        self.data_dir = data_dir
        self.path = data_dir / INDEX_FILE
        self.mark = data_dir / CLEAN_MARK
        self.cache_kib = max(1, cache_mb) * 1024
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._reader_count = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: dict[str, _Change] = {}
        self._writing: dict[str, _Change] = {}
        self._seq = 0
        self._done = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.write_failures = 0
        # Set once every row's attr has been read (lists from the index wait for it).
        self.filled = asyncio.Event()

    # -- opening and closing (blocking) -------------------------------------------------
    def _connect(self, share: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA cache_size = -{max(256, self.cache_kib // share)}")
        conn.execute("PRAGMA mmap_size = 0")  # mapped pages would count in RSS
        conn.execute("PRAGMA temp_store = FILE")
        return conn

    def open(self) -> None:
        """Open (creating) the database; IndexCorrupt when it is not a usable index."""
        os.makedirs(self.data_dir, exist_ok=True)
        try:
            db = self._connect(2)
            try:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = OFF")  # trusted only after a clean stop
                db.executescript(_DDL)
                row = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
                elif row[0] != str(SCHEMA):
                    raise IndexCorrupt(f"index schema {row[0]}, expected {SCHEMA}")
                db.execute("SELECT count(*) FROM counts").fetchone()
            except BaseException:
                db.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(str(exc)) from exc
        self._db = db
        self._thread = threading.Thread(target=self._write_forever, name="se-index", daemon=True)
        self._thread.start()

    def ensure_indexes(self) -> None:
        """The SQL indexes and triggers (a no-op when they exist). Built with a larger
        sort memory, given back at once (a rebuild at start, before the SE serves)."""
        with self._db_lock:
            db = self._conn()
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files_upd'").fetchone():
                return
            db.execute(f"PRAGMA cache_size = -{BUILD_CACHE_KIB}")
            try:
                db.executescript(_INDEXES)
            finally:
                db.execute(f"PRAGMA cache_size = -{max(256, self.cache_kib // 2)}")
                db.execute("PRAGMA shrink_memory")

    def remove_files(self) -> None:
        """Delete the database (and its WAL) for a rebuild; the index must be closed."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def close(self) -> None:
        """Commit what is pending, stop the writer, checkpoint and close (blocking)."""
        if self._thread is not None:
            with self._lock:
                self._stopping = True
                self._cond.notify_all()
            self._thread.join()
            self._thread = None
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break
        self._reader_count = 0
        if self._db is not None:
            with self._db_lock:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
                self._db = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def clean(self) -> bool:
        """Nothing left uncommitted (a clean mark may be written after ``close``)."""
        with self._lock:
            return not self._pending and not self._writing

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("file index is not open")
        return self._db

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._reader_count < READERS
                self._reader_count += grow
            conn = self._connect(2 * READERS) if grow else self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put(conn)

    # -- changes (any thread, never blocking on SQLite) ----------------------------------
    def put(self, storage_path: str, entry: Entry) -> None:
        """``storage_path`` holds ``entry`` (its attr as just committed)."""
        key = key_of(storage_path)
        if key is not None:
            self._change(storage_path, (key, entry))

    def discard(self, storage_path: str) -> None:
        key = key_of(storage_path)
        if key is not None:
            self._change(storage_path, (key, None))

    def _change(self, storage_path: str, change: _Change) -> None:
        with self._lock:
            self._pending[storage_path] = change
            self._seq += 1
            self._cond.notify_all()

    def flush_sync(self) -> None:
        """Blocking: return once every change made before the call is committed."""
        with self._lock:
            target = self._seq
            while self._done < target and self._thread is not None:
                self._cond.wait()

    def _write_forever(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending and self._stopping:
                    return
                self._writing, self._pending = self._pending, {}
                target = self._seq
                batch = self._writing
            try:
                self._commit(batch)
            except sqlite3.Error:
                # Kept in the overlay (lookups still see it) and tried again; a stop
                # meanwhile leaves the index unmarked, so the next start rebuilds it.
                self.write_failures += 1
                log.exception("file index write failed; retrying")
                with self._lock:
                    self._pending = {**batch, **self._pending}
                    self._writing = {}
                    if self._stopping:
                        return
                    self._cond.wait(_RETRY_SECONDS)
                continue
            with self._lock:
                self._writing = {}
                self._done = target
                self._cond.notify_all()

    def _commit(self, batch: dict[str, _Change]) -> None:
        puts = []
        drops = []
        for path, (key, entry) in batch.items():
            if entry is None:
                drops.append((path,))
            else:
                puts.append(
                    (
                        path,
                        key,
                        id_bytes(entry.file_id),
                        entry.status,
                        micros(entry.uploaded_at),
                    )
                )
        with self._db_lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.executemany("DELETE FROM files WHERE path = ?", drops)
                db.executemany(_UPSERT, puts)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- lookups (blocking: worker threads) ------------------------------------------
    def _overlay(self, key: int | None = None) -> dict[str, _Change]:
        with self._lock:
            if key is None:
                return {**self._writing, **self._pending}
            return {
                p: c
                for layer in (self._writing, self._pending)
                for p, c in layer.items()
                if c[0] == key
            }

    def candidates(self, file_id: str) -> list[str]:
        try:
            key = int(file_id.replace("-", "")[:8], 16)
        except ValueError:
            return []
        overlay = self._overlay(key)  # first: see the docstring of this module
        if self._db is None:  # not opened (a node that was never started: unit tests)
            return sorted(p for p, (_, e) in overlay.items() if e is not None)
        with self._reader() as db:
            found = {r[0] for r in db.execute("SELECT path FROM files WHERE key = ?", (key,))}
        for path, (_, entry) in overlay.items():
            if entry is None:
                found.discard(path)
            else:
                found.add(path)
        return sorted(found)

    def adopt(self, found: Sequence[tuple[str, Entry]]) -> int:
        """Blocking: put the copies the index lacks (attrs it never saw written: put in
        the data dir by hand or by an older version; rebuild-index finds them). Returns
        how many were new."""
        new = 0
        for path, entry in found:
            if path not in self.candidates(entry.file_id):
                self.put(path, entry)
                new += 1
        return new

    def counts(self) -> dict[str, int]:
        """Rows per status (``UNKNOWN``: attr not read yet), overlay committed first."""
        self.flush_sync()
        with self._reader() as db:
            return {s: n for s, n in db.execute("SELECT status, n FROM counts") if n}

    def page(self, statuses: Sequence[str], limit: int, offset: int) -> tuple[list[str], int]:
        """Paths of one list page (uploaded_at desc, file_id desc) and the total, from
        the index alone: each status's rows come in order from ``files_order`` and are
        merged (UNION ALL ... ORDER BY merges sorted arms), so a page costs
        O(offset + limit) index steps and the total O(statuses)."""
        self.flush_sync()
        wanted = sorted(set(statuses))
        if not wanted or limit <= 0:
            total = self._total(wanted)
            return [], total
        arm = "SELECT path, uploaded_at, file_id FROM files WHERE status = ?"
        sql = " UNION ALL ".join([arm] * len(wanted))
        sql += " ORDER BY uploaded_at DESC, file_id DESC LIMIT ? OFFSET ?"
        with self._reader() as db:
            rows = db.execute(sql, (*wanted, limit, offset)).fetchall()
        return [r[0] for r in rows], self._total(wanted)

    def _total(self, statuses: Sequence[str]) -> int:
        with self._reader() as db:
            counts = dict(db.execute("SELECT status, n FROM counts").fetchall())
        return sum(int(counts.get(s, 0)) for s in statuses)

    def iter_paths(self, after: str = "", batch: int = 1000) -> Iterator[str]:
        """Every indexed path in order, ``batch`` rows per query (memory O(batch))."""
        self.flush_sync()
        while True:
            with self._reader() as db:
                rows = db.execute(
                    "SELECT path FROM files WHERE path > ? ORDER BY path LIMIT ?",
                    (after, batch),
                ).fetchall()
            if not rows:
                return
            for (path,) in rows:
                yield path
            after = rows[-1][0]

    def __len__(self) -> int:
        return sum(self.counts().values())

    # -- bulk (blocking; before the SE serves, or from the background fill) -----------
    def load_names(self, paths: Iterable[str]) -> int:
        """Stream storage paths (their attrs not read yet) into an empty index, before
        ``ensure_indexes`` (no SQL index or trigger to keep up row by row)."""
        n = 0
        rows: list[tuple[str, int]] = []
        with self._db_lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                for path in paths:
                    key = key_of(path)
                    if key is None:
                        continue
                    rows.append((path, key))
                    if len(rows) >= _BATCH:
                        db.executemany("INSERT INTO files(path, key) VALUES (?, ?)", rows)
                        n += len(rows)
                        rows.clear()
                db.executemany("INSERT INTO files(path, key) VALUES (?, ?)", rows)
                n += len(rows)
                db.execute(
                    "INSERT INTO counts VALUES (?, ?)"
                    " ON CONFLICT(status) DO UPDATE SET n = n + excluded.n",
                    (UNKNOWN, n),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return n

    def unknown(self, limit: int) -> list[str]:
        """Up to ``limit`` paths whose attr has not been read into the index yet."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT path FROM files WHERE status IS NULL LIMIT ?", (limit,)
            ).fetchall()
        return [r[0] for r in rows]

    def fill(self, found: Sequence[tuple[str, Entry | None]]) -> None:
        """Record what the attrs of rows not read yet say (None: no attr any more). Only
        rows still unread change: a put or discard committed meanwhile is newer."""
        sets = [
            (id_bytes(e.file_id), e.status, micros(e.uploaded_at), p)
            for p, e in found
            if e is not None
        ]
        gone = [(p,) for p, e in found if e is None]
        with self._db_lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.executemany(
                    "UPDATE files SET file_id = ?, status = ?, uploaded_at = ?"
                    " WHERE path = ? AND status IS NULL",
                    sets,
                )
                db.executemany("DELETE FROM files WHERE path = ? AND status IS NULL", gone)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
