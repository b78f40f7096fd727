"""The storage element's parts, wired once at start and shared by every request.

``SEState`` only wires: every durable change of a file goes through ``store``
(the FileStore); the few delegations below keep older call sites working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends import make_backend
from artstore.storage_element.backends.base import Backend, BatchPublisher
from artstore.storage_element.capacity import Capacity
from artstore.storage_element.catalog.refused import FILE_NAME as REFUSED_FILE
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.catalog.sync import CatalogSync
from artstore.storage_element.faults import FaultInjector
from artstore.storage_element.files.group_commit import GroupPublisher
from artstore.storage_element.files.index import FileIndex
from artstore.storage_element.files.index_start import IndexStats
from artstore.storage_element.layout import Layout
from artstore.storage_element.maintenance.state import MaintenanceState
from artstore.storage_element.modes.service import ModeService
from artstore.storage_element.settings import SESettings
from artstore.storage_element.store.filestore import FileStore
from artstore.storage_element.wal.journal import Journal

log = logging.getLogger("artstore.storage_element")


class SEState:
    def __init__(
        self, settings: SESettings, engine: AsyncEngine | None, backend: Backend | None = None
    ) -> None:
        self.settings = settings
        self.layout = Layout(settings.data_dir, settings.wal_dir)
        # ``backend``: tests pass an in-memory one (backends/memory.py).
        self.backend = backend if backend is not None else make_backend(settings, self.layout)
        self.faults = FaultInjector(settings.crash_at)
        self.journal = Journal(settings.wal_dir, settings.wal_segment_bytes)
        # Small uploads share their flushes where the backend can (local disk).
        self.group: GroupPublisher | None = None
        if settings.group_commit_max_bytes > 0 and isinstance(self.backend, BatchPublisher):
            self.group = GroupPublisher(self.backend, self.faults.point, self.journal.durable)
        self.index = FileIndex(settings.data_dir, settings.index_cache_mb)
        self.index_stats = IndexStats()
        self.capacity = Capacity(self.backend, settings.max_capacity, settings.reserve_bytes)
        self.modes = ModeService(self.layout, self.journal, self.faults, settings.mode)
        self.engine = engine
        repo = CatalogRepository(engine, settings.id) if engine is not None else None
        self.catalog = CatalogSync(
            repo,
            self.journal,
            settings.catalog_timeout,
            settings.catalog_retry_interval,
            # Rows refused for their data, remembered across restarts (catalog/refused.py).
            refused_path=self.layout.data_dir / REFUSED_FILE,
        )
        self.maintenance = MaintenanceState()
        self.store = FileStore(
            settings,
            self.backend,
            self.journal,
            self.faults,
            self.capacity,
            self.index,
            self.catalog,
            self.modes,
            self.maintenance,
            self.group,
        )
        self.catalog.set_loader(self.store.find)
        self.tasks: set[asyncio.Task[None]] = set()
        self.recovered = False
        self.started_at = datetime.now(UTC)

    @asynccontextmanager
    async def file_locked(self, file_id: str) -> AsyncIterator[None]:
        """Serialise changes to one file (the FileStore's per-id lock)."""
        async with self.store.locks.hold(file_id):
            yield

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the node keeps (and cancels when it stops)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- attrs (read through the FileStore) -----------------------------------------------
    def read_attr_sync(self, storage_path: str) -> Attr | None:
        return self.store.read_attr_sync(storage_path)

    async def find_attr(self, file_id: str) -> Attr | None:
        """The attr (the truth) of ``file_id`` on this SE, or None."""
        return await self.store.find(file_id)

    async def get_attr(self, file_id: str) -> Attr:
        return await self.store.get(file_id)


# async: FastAPI runs a plain ``def`` dependency on its thread pool (a hop per request).
async def get_node(request: Request) -> SEState:
    node: SEState = request.app.state.node
    return node


Node = Annotated[SEState, Depends(get_node)]
