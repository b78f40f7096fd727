"""Session files under ``<SE_DATA_DIR>/uploads/<file_id>/``. Everything here blocks:
call it from a worker thread.

``session.json`` is the truth about a session (its committed ``offset`` included) and
is only ever replaced atomically; ``data`` holds the bytes. Bytes past the committed
offset (a PATCH that failed, or crashed, before ``session.json`` was replaced) were
never acknowledged and are overwritten by the next append.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artstore.storage_element.fsutil import atomic_replace, fsync_dir, makedirs_durable

SESSION = "session.json"
DATA = "data"


class SessionStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "uploads"

    def dir(self, session_id: str) -> Path:
        return self.root / session_id

    def create(self, session: dict[str, Any]) -> None:
        makedirs_durable(self.root)
        d = self.dir(session["session_id"])
        d.mkdir()
        fd = os.open(d / DATA, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.save(session)  # the commit point of a new session
        fsync_dir(self.root)

    def save(self, session: dict[str, Any]) -> None:
        d = self.dir(session["session_id"])
        atomic_replace(d / SESSION, json.dumps(session).encode(), d)

    def load(self, session_id: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.dir(session_id) / SESSION).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        return data

    def open_at(self, session_id: str, offset: int) -> int:
        """A descriptor positioned at ``offset`` (what lies beyond it is not acknowledged)."""
        fd = os.open(self.dir(session_id) / DATA, os.O_WRONLY)
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        return fd

    @staticmethod
    def write(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    @staticmethod
    def sync_close(fd: int) -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_chunks(self, session_id: str, length: int, chunk: int) -> Iterator[bytes]:
        with open(self.dir(session_id) / DATA, "rb") as fh:
            left = length
            while left > 0:
                data = fh.read(min(chunk, left))
                if not data:
                    raise OSError(f"session {session_id}: data shorter than its offset")
                left -= len(data)
                yield data

    def sha256(self, session_id: str, length: int, chunk: int) -> str:
        h = hashlib.sha256()
        for data in self.read_chunks(session_id, length, chunk):
            h.update(data)
        return h.hexdigest()

    def remove(self, session_id: str) -> None:
        d = self.dir(session_id)
        if d.exists():
            shutil.rmtree(d)
            fsync_dir(self.root)

    def stale(self, now: datetime) -> list[str]:
        """Sessions to drop: expired, or whose creation never committed (no
        ``session.json``: a crash mid-create). Only candidates: a create in progress
        has no ``session.json`` yet either, so each is judged again by ``drop_if_stale``
        under the session's lock, which a create holds from its mkdir to its commit point."""
        if not self.root.is_dir():
            return []
        return [entry.name for entry in os.scandir(self.root) if self._stale(entry.name, now)]

    def _stale(self, session_id: str, now: datetime) -> bool:
        session = self.load(session_id)
        return session is None or datetime.fromisoformat(session["expires_at"]) <= now

    def drop_if_stale(self, session_id: str, now: datetime) -> bool:
        """Remove a stale session (call with its lock held). True if it was removed."""
        d = self.dir(session_id)
        if not d.is_dir() or not self._stale(session_id, now):
            return False
        shutil.rmtree(d)
        fsync_dir(self.root)
        return True


def utcnow() -> datetime:
    return datetime.now(UTC)
