"""The storage element's parts, wired once at start and shared by every request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.errors import NotFound
from artstore.storage_element.attr.model import Attr, BadAttr, decode
from artstore.storage_element.backends import make_backend
from artstore.storage_element.backends.base import BatchPublisher
from artstore.storage_element.capacity import Capacity
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.catalog.sync import CatalogSync
from artstore.storage_element.faults import FaultInjector
from artstore.storage_element.files.group_commit import GroupPublisher
from artstore.storage_element.files.index import FileIndex
from artstore.storage_element.layout import Layout
from artstore.storage_element.maintenance.state import MaintenanceState
from artstore.storage_element.modes.service import ModeService
from artstore.storage_element.settings import SESettings
from artstore.storage_element.wal.journal import Journal

log = logging.getLogger("artstore.storage_element")


@dataclass
class _FileLock:
    lock: asyncio.Lock
    users: int = 0


class StorageNode:
    def __init__(self, settings: SESettings, engine: AsyncEngine | None) -> None:
        self.settings = settings
        self.layout = Layout(settings.data_dir, settings.wal_dir)
        self.backend = make_backend(settings, self.layout)
        self.faults = FaultInjector(settings.crash_at)
        self.journal = Journal(settings.wal_dir, settings.wal_segment_bytes)
        # Small uploads share their flushes where the backend can (local disk).
        self.group: GroupPublisher | None = None
        if settings.group_commit_max_bytes > 0 and isinstance(self.backend, BatchPublisher):
            self.group = GroupPublisher(self.backend, self.faults.point, self.journal.durable)
        self.index = FileIndex()
        self.capacity = Capacity(self.backend, settings.max_capacity, settings.reserve_bytes)
        self.modes = ModeService(self.layout, self.journal, self.faults, settings.mode)
        self.engine = engine
        repo = CatalogRepository(engine, settings.id) if engine is not None else None
        self.catalog = CatalogSync(
            repo, self.journal, settings.catalog_timeout, settings.catalog_retry_interval
        )
        self.catalog.set_loader(self.find_attr)
        self.maintenance = MaintenanceState()
        self.tasks: set[asyncio.Task[None]] = set()
        self.recovered = False
        self.started_at = datetime.now(UTC)
        self._file_locks: dict[str, _FileLock] = {}
        # File ids being uploaded right now, so two uploads cannot claim one id.
        self.uploads_in_flight: set[str] = set()

    @asynccontextmanager
    async def file_locked(self, file_id: str) -> AsyncIterator[None]:
        """Serialise changes to one file; the lock is dropped once nobody holds or waits."""
        entry = self._file_locks.get(file_id)
        if entry is None:
            entry = self._file_locks[file_id] = _FileLock(asyncio.Lock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._file_locks[file_id]

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the node keeps (and cancels when it stops)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- attrs ---------------------------------------------------------------------------
    def read_attr_sync(self, storage_path: str) -> Attr | None:
        try:
            raw = self.backend.read_attr(storage_path)
        except FileNotFoundError:
            return None
        try:
            return decode(raw)
        except BadAttr as exc:
            blob = self.backend.blob_size(storage_path) or 0
            dest = self.backend.quarantine(storage_path)
            self.index.discard(storage_path)
            self.capacity.stored(-(blob + len(raw)), files=-1)
            self.maintenance.quarantined += 1
            log.error(
                "bad attr quarantined",
                extra={
                    "fields": {
                        "storage_path": storage_path,
                        "reason": str(exc),
                        "moved_to": str(dest),
                    }
                },
            )
            return None

    def _find_attr_sync(self, file_id: str) -> Attr | None:
        for path in self.index.candidates(file_id):
            attr = self.read_attr_sync(path)
            if attr is not None and attr.file_id == file_id:
                return attr
        return None

    async def find_attr(self, file_id: str) -> Attr | None:
        """The attr (the truth) of ``file_id`` on this SE, or None."""
        return await asyncio.to_thread(self._find_attr_sync, file_id)

    async def get_attr(self, file_id: str) -> Attr:
        attr = await self.find_attr(file_id)
        if attr is None:
            raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
        return attr


# async: FastAPI runs a plain ``def`` dependency on its thread pool (a hop per request).
async def get_node(request: Request) -> StorageNode:
    node: StorageNode = request.app.state.node
    return node


Node = Annotated[StorageNode, Depends(get_node)]
