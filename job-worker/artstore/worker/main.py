"""The job worker app: ``artstore serve worker`` (health and metrics; the queue worker
runs in its lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from artstore.common.app import create_service_app
from artstore.common.auth import TOKEN_PATH
from artstore.common.db import make_engine
from artstore.common.httpclient import make_async_client
from artstore.common.registry import ServiceToken, StorageRegistry, service_credentials
from artstore.common.se_tokens import SeTokens
from artstore.jobs.queue import make_queue
from artstore.worker.health import health_checks
from artstore.worker.metrics import WorkerMetrics
from artstore.worker.settings import WorkerSettings
from artstore.worker.state import WorkerState
from artstore.worker.tasks.runner import register_jobs
from artstore.worker.tasks.schedule import register_schedules

log = logging.getLogger("artstore.worker")

# Connections beyond one per running job: LISTEN, heartbeats, fetching, aborts.
_QUEUE_SPARE_CONNECTIONS = 4


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    if not settings.database_url:
        raise SystemExit("the job worker needs DATABASE_URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client_id, client_secret = await asyncio.to_thread(
            service_credentials,
            settings.client_id,
            settings.client_secret,
            settings.credentials_file,
            "worker",
        )
        token = ServiceToken(settings.admin_url.rstrip("/") + TOKEN_PATH, client_id, client_secret)
        registry = StorageRegistry(
            settings.admin_url,
            token,
            poll_interval=settings.registry_poll_interval,
            redis_url=settings.redis_url,
        )
        engine = make_engine(settings.database_url, pool_size=settings.concurrency + 1)
        queue = make_queue(
            settings.database_url, pool_size=settings.concurrency + _QUEUE_SPARE_CONNECTIONS
        )
        se_http = make_async_client(
            timeout=settings.se_timeout, connect_timeout=settings.se_connect_timeout
        )
        admin_http = make_async_client(timeout=5.0, connect_timeout=2.0)
        state = WorkerState(
            settings,
            engine,
            queue,
            registry,
            token,
            SeTokens(token),
            se_http,
            admin_http,
            WorkerMetrics(app.state.metrics.registry),
        )
        app.state.worker = state
        app.state.health_checks = health_checks(state)
        register_jobs(state)
        register_schedules(state)
        try:
            await queue.open_async()
            await registry.start()
            state.runner = asyncio.create_task(
                queue.run_worker_async(
                    concurrency=settings.concurrency,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=settings.shutdown_timeout,
                    stalled_worker_timeout=settings.stalled_seconds,
                    update_heartbeat_interval=max(settings.stalled_seconds / 3, 0.5),
                ),
                name="queue-worker",
            )
            yield
        finally:
            if state.runner is not None:
                state.runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state.runner
            await registry.stop()
            await queue.close_async()
            await se_http.aclose()
            await admin_http.aclose()
            await engine.dispose()

    return create_service_app(
        service="worker",
        title="ArtStore job worker",
        description="Background jobs: scheduled SE maintenance, repair, history pruning.",
        settings=settings,
        lifespan=lifespan,
    )
