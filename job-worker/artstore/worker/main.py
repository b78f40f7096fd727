"""The job worker app: ``artstore serve worker`` (health and metrics; the queue worker
runs in its lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

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
from artstore.worker.previews.service import QUEUE as PREVIEW_QUEUE
from artstore.worker.settings import WorkerSettings
from artstore.worker.state import WorkerState
from artstore.worker.tasks import JOBS
from artstore.worker.tasks.runner import register_jobs
from artstore.worker.tasks.schedule import register_schedules

log = logging.getLogger("artstore.worker")

# Connections beyond one per running job: LISTEN, heartbeats, fetching, aborts.
_QUEUE_SPARE_CONNECTIONS = 4


async def _run_all(*workers: Coroutine[Any, Any, None]) -> None:
    """Run the workers together; when one ends (or this is cancelled) the others stop."""
    tasks = [asyncio.create_task(w) for w in workers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
        engine = make_engine(
            settings.database_url,
            pool_size=settings.concurrency + settings.preview_concurrency + 1,
        )
        queue = make_queue(
            settings.database_url,
            pool_size=settings.concurrency
            + settings.preview_concurrency
            + 2 * _QUEUE_SPARE_CONNECTIONS,
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
            # Two procrastinate workers: previews (CPU-bound rendering) on a queue with
            # slots of their own, so repair and GC are never starved by a backfill.
            options: dict[str, Any] = {
                "install_signal_handlers": False,
                "shutdown_graceful_timeout": settings.shutdown_timeout,
                "stalled_worker_timeout": settings.stalled_seconds,
                "update_heartbeat_interval": max(settings.stalled_seconds / 3, 0.5),
            }
            others = sorted({spec.queue for spec in JOBS.values()} | {"default", "schedule"})
            others.remove(PREVIEW_QUEUE)
            state.runner = asyncio.create_task(
                _run_all(
                    queue.run_worker_async(
                        queues=others, concurrency=settings.concurrency, **options
                    ),
                    queue.run_worker_async(
                        queues=[PREVIEW_QUEUE],
                        concurrency=settings.preview_concurrency,
                        name="previews",
                        **options,
                    ),
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
