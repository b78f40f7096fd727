"""The storage element app: ``artstore serve storage-element``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from artstore.common.app import create_service_app
from artstore.common.db import make_engine
from artstore.storage_element import lifecycle
from artstore.storage_element.files.previews import router as previews_router
from artstore.storage_element.files.router import router as files_router
from artstore.storage_element.info.router import router as info_router
from artstore.storage_element.maintenance.quarantine_router import router as quarantine_router
from artstore.storage_element.maintenance.router import router as maintenance_router
from artstore.storage_element.metrics import NodeCollector
from artstore.storage_element.modes.router import router as modes_router
from artstore.storage_element.settings import SESettings
from artstore.storage_element.state import SEState
from artstore.storage_element.uploads.router import router as uploads_router


def create_app(settings: SESettings | None = None) -> FastAPI:
    settings = settings or SESettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every write waits on fsyncs in worker threads; the default pool (cores + 4)
        # would cap concurrent writes far below what the disk can do.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(settings.io_threads, thread_name_prefix="se-io")
        )
        # No pre-ping: a failed catalog write is owed and replayed, a failed read falls
        # back to the attr files, so the extra round trip per statement buys nothing.
        engine = (
            make_engine(settings.database_url, pre_ping=False) if settings.database_url else None
        )
        node = SEState(settings, engine)
        app.state.node = node
        app.state.health_checks = lifecycle.health_checks(node)
        collector = NodeCollector(node)
        app.state.metrics.registry.register(collector)
        tasks = await lifecycle.start(node)
        try:
            yield
        finally:
            await lifecycle.stop(node, tasks)
            app.state.metrics.registry.unregister(collector)
            if engine is not None:
                await engine.dispose()

    app = create_service_app(
        service="storage_element",
        title=f"ArtStore storage element {settings.id}",
        description="Stores blobs with their attr.json, journaled in a write-ahead log.",
        settings=settings,
        lifespan=lifespan,
        own_audience=settings.id,
        # Streamed and bounded by SE_MAX_FILE_SIZE, not by SE_MAX_BODY_BYTES.
        streaming=[("POST", "/api/v1/files"), ("PATCH", "/api/v1/uploads/{session_id}")],
    )
    app.include_router(info_router)
    app.include_router(files_router)
    app.include_router(previews_router)
    app.include_router(modes_router)
    app.include_router(maintenance_router)
    app.include_router(quarantine_router)
    app.include_router(uploads_router)
    return app
